"""The chaos run's handles on a running stack: supervisord, the simulator's control socket, bin/trader, the ledger.

Everything here talks to our own stack only: supervisord's XML-RPC in the stack home, the simulator's unix
control socket (never its API port), the executor's request socket, the ledger opened read-only. It must never
signal a process it did not get from this stack's supervisord, and never the simulator (it stands in for the
Gateway). Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procs.gateway_sim.control import control_path, request
from procs.monitor.daybook import ledger_path, read_only
from shared.bus import RequestTimeout, req_endpoint, request_once
from shared.messages import Request, StatusRequest
from shared.service import MONOTONIC_FIELD, heartbeat_file
from tests.support.stack import Stack

REPO = Path(__file__).resolve().parent.parent
TRADER = REPO / "bin" / "trader"
PYTHON = REPO / ".venv" / "bin" / "python"


class Refused(Exception):
    """The simulator or a CLI refused a command; str() is its one line."""


@dataclass
class HaltPeriod:
    """One halt as observed: since_ns from the ledger (the executor's own stamp), last_seen_ns from our polls."""

    since_ns: int
    last_seen_ns: int
    reason: str


@dataclass
class World:
    stack: Stack
    log: Callable[[str], None]
    halts: list[HaltPeriod] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None
    last_status: dict[str, Any] = field(default_factory=dict)
    # protective stops, from the executor's heartbeat: symbol -> (longest stretch unprotected with the Gateway
    # READY, when it was seen), how many beats were read, and since when the Gateway has been READY in them
    unprotected_worst: dict[str, tuple[float, str]] = field(default_factory=dict)
    protection_samples: int = 0
    reconcile_seconds: float = 0.0
    _ready_since: float | None = None

    # ------------------------------------------------------------------ the simulator, by its control socket

    @property
    def port(self) -> int:
        return int(self.stack.settings.ib_port)

    def sim(self, *argv: object, timeout: float = 10.0) -> dict[str, Any]:
        """One control command; Refused with the simulator's line when it says no."""
        path = control_path(self.stack.settings.run_dir, self.port)
        answer = request(path, [str(a) for a in argv], timeout=timeout)
        if not answer.get("ok"):
            first = str(answer.get("error", "refused")).splitlines()[0]
            raise Refused(first)
        return answer

    def audit(self) -> dict[str, Any] | None:
        """The simulator's audit, or None when this simulator has no audit command."""
        try:
            return self.sim("audit", timeout=20.0)
        except Refused:
            return None

    # ------------------------------------------------------------------ supervisord

    def info(self, program: str) -> dict[str, Any]:
        return self.stack.info(program)

    def pid_of(self, program: str) -> int | None:
        info = self.info(program)
        return int(info["pid"]) if info.get("statename") == "RUNNING" and info.get("pid") else None

    def running_for(self, program: str) -> float:
        """Seconds `program` has been RUNNING (0 when it is not)."""
        try:
            info = self.info(program)
        except (OSError, xmlrpc.client.Error):  # supervisord busy or restarting a program: not up, for us
            return 0.0
        if info.get("statename") != "RUNNING":
            return 0.0
        return max(0.0, float(info["now"]) - float(info["start"]))

    def sigkill(self, program: str) -> int | None:
        """SIGKILL a program of this stack by the pid its supervisord gives (it restarts it); the pid, or None."""
        if program == "gateway_sim":
            raise ValueError("the simulator stands in for the Gateway: never signalled")
        pid = self.pid_of(program)
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return pid

    def restart(self, program: str) -> None:
        """A clean restart through supervisord (what `supervisorctl restart` does)."""
        rpc = self.stack.rpc(timeout=30.0)
        with contextlib.suppress(Exception):  # NOT_RUNNING: it is being restarted already
            rpc.supervisor.stopProcess(program, True)
        self.start(program)

    def start(self, program: str) -> None:
        with contextlib.suppress(Exception):  # ALREADY_STARTED
            self.stack.rpc(timeout=10.0).supervisor.startProcess(program, False)

    def revive(self, programs: tuple[str, ...]) -> list[str]:
        """Start any program supervisord gave up on (FATAL/EXITED/BACKOFF too long): what a human would do."""
        revived = []
        for info in self.stack.rpc().supervisor.getAllProcessInfo():
            if info["name"] in programs and info["statename"] in ("FATAL", "EXITED", "STOPPED"):
                self.start(info["name"])
                why = info.get("spawnerr") or f"exit status {info.get('exitstatus')}"
                revived.append(f"{info['name']} ({info['statename']}, {why})")
        return revived

    # ------------------------------------------------------------------ settings in the home's .env

    def set_env(self, key: str, value: str) -> None:
        """Rewrite one line of the home's .env atomically (a program starting meanwhile reads the old or the new
        file, never half of one) and with the old file's mode (the stack refuses a .env others can read)."""
        path = self.stack.home / ".env"
        lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{key}=")]
        fresh = path.with_name(".env.chaos-new")
        fresh.write_text("".join(f"{line}\n" for line in [*lines, f"{key}={value}"]))
        os.chmod(fresh, path.stat().st_mode & 0o777)
        os.replace(fresh, path)

    # ------------------------------------------------------------------ the operator: bin/trader and requests

    def trader(self, *argv: str, timeout: float = 30.0) -> tuple[int, str]:
        """Run bin/trader as a human would; (exit code, its output, both streams)."""
        try:
            run = subprocess.run(
                [str(PYTHON), str(TRADER), "--timeout", "5", *argv],
                env=self.stack.env(),
                cwd=self.stack.home,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:  # subprocess.run has killed it (our own child)
            return 124, f"bin/trader {' '.join(argv)}: no answer within {timeout:g}s"
        return run.returncode, (run.stdout + run.stderr).strip()

    def executor(self, req: Request, timeout: float = 3.0) -> Any:
        """One request to the executor; RequestTimeout when it is not answering, Refused when it says no."""
        reply = request_once(req_endpoint(self.stack.settings, "executor"), req, timeout=timeout)
        if not reply.ok:
            raise Refused(str(reply.error))
        return reply.result

    def status(self) -> dict[str, Any] | None:
        try:
            got: dict[str, Any] = self.executor(StatusRequest(), timeout=2.0)
        except (RequestTimeout, Refused):
            return None
        self.last_status = got
        return got

    # ------------------------------------------------------------------ the ledger, read-only

    def ledger(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with read_only(ledger_path(self.stack.settings.data_dir)) as conn:
            return list(conn.execute(sql, args))

    # ------------------------------------------------------------------ halts, recorded every 0.5 s

    def watch_halts(self) -> None:
        self._watcher = threading.Thread(target=self._watch, name="halt-watch", daemon=True)
        self._watcher.start()

    def stop_watching(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            self.observe_halt()
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                self.observe_protection()

    def observe_protection(self) -> None:
        """The executor heartbeat's `unprotected` (symbol -> seconds with a position and no live stop), counted
        only from when its Gateway was READY: a stop cannot be placed through a Gateway that is away."""
        path = heartbeat_file(self.stack.settings, "executor")
        doc = json.loads(path.read_bytes())
        fresh = time.monotonic_ns() - int(doc.get(MONOTONIC_FIELD, 0)) < 3 * 10**9
        detail = doc.get("detail") or {}
        now = time.monotonic()
        if not fresh or detail.get("gateway") != "READY" or "unprotected" not in detail:
            self._ready_since = None
            return
        if self._ready_since is None:
            self._ready_since = now
        self.protection_samples += 1
        self.reconcile_seconds = float(detail.get("reconcile_seconds") or 0)
        for symbol, seconds in (detail.get("unprotected") or {}).items():
            exposed = min(float(seconds), now - self._ready_since)
            if exposed > self.unprotected_worst.get(symbol, (0.0, ""))[0]:
                self.unprotected_worst[symbol] = (exposed, time.strftime("%H:%M:%S"))

    def observe_halt(self) -> None:
        """The executor's persisted halt (ledger) and its status: a halt seen by either extends its period."""
        now = time.time_ns()
        since, reason = 0, ""
        with contextlib.suppress(sqlite3.Error):
            rows = self.ledger("SELECT halted, reason, since_ns FROM halt WHERE id = 1")
            if rows and rows[0]["halted"]:
                since, reason = int(rows[0]["since_ns"]) or now, str(rows[0]["reason"])
        status = self.status()
        if not since and status is not None and status.get("halted"):
            since, reason = now, str(status.get("halt_reason", ""))  # not persisted yet: from now on
        if not since:
            return
        last = self.halts[-1] if self.halts else None
        if last is not None and (last.since_ns == since or last.last_seen_ns >= since):
            last.last_seen_ns = now
            last.reason = last.reason or reason
        else:
            self.halts.append(HaltPeriod(since, now, reason))
