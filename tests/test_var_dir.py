"""The whole stack with VAR_DIR outside the checkout and outside the stack home, through the operator's commands:
bin/stack start (once; a second start finds it running), bin/gateway-health, a hung program restarted by the
watchdog through supervisord's socket under VAR_DIR, private files everywhere, bin/stack stop.

Everything bin/stack starts is stopped at the end by bin/stack stop, else by the pid in VAR_DIR's pid file (a
process this test started, checked by its command line); nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from shared.supervisor import supervisor_rpc
from tests.support.sim import free_port
from tests.support.stack import ALL_PROGRAMS, REPO, TEST_DEFAULTS, wait_for, write_env_file


@dataclass
class Started:
    home: Path
    var: Path
    env: dict[str, str]
    start: subprocess.CompletedProcess[str]
    pids: set[int] = field(default_factory=set)

    def run(self, command: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "bin" / command), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def rpc(self) -> Any:
        return supervisor_rpc(self.var / "run" / "supervisor.sock", 5.0).supervisor

    def info(self, program: str) -> dict[str, Any]:
        info: dict[str, Any] = self.rpc().getProcessInfo(program)
        if info.get("pid"):
            self.pids.add(int(info["pid"]))
        return info


def _supervisord(var: Path) -> psutil.Process | None:
    """The supervisord this test started: the pid in VAR_DIR's pid file, running VAR_DIR's rendered conf."""
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        proc = psutil.Process(int((var / "run" / "supervisord.pid").read_text()))
        if str(var / "run" / "supervisord.conf") in proc.cmdline():
            return proc
    return None


def _clean_up(s: Started) -> None:
    with contextlib.suppress(Exception):
        for info in s.rpc().getAllProcessInfo():
            if info.get("pid"):
                s.pids.add(int(info["pid"]))
    if _supervisord(s.var) is not None:
        s.run("stack", "stop", timeout=90)
    leftover = _supervisord(s.var)
    if leftover is not None:
        leftover.terminate()
        with contextlib.suppress(psutil.TimeoutExpired):
            leftover.wait(20)
        with contextlib.suppress(psutil.Error):
            leftover.kill()
    procs = []
    for pid in s.pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.resume()
            p.kill()
    psutil.wait_procs(procs, timeout=5)


@pytest.fixture(scope="module")
def started() -> Iterator[Started]:
    home = Path(tempfile.mkdtemp(prefix="ibh", dir="/tmp"))
    outside = Path(tempfile.mkdtemp(prefix="ibv", dir="/tmp"))
    var = outside / "var"
    values = {
        **TEST_DEFAULTS,
        "IB_PORT": str(free_port()),
        "SYMBOLS": "AAPL,MSFT",
        "VAR_DIR": str(var),
        "HEARTBEAT_BUDGET_SECONDS": "4",
        "LOG_LEVEL": "INFO",
    }
    write_env_file(home / ".env", values)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STACK_HOME": str(home), "LANG": "C.UTF-8"}
    s = Started(home, var, env, subprocess.CompletedProcess([], 0))
    try:
        s.start = s.run("stack", "start", "--timeout", "90", timeout=150)
        yield s
    finally:
        _clean_up(s)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(outside, ignore_errors=True)


def test_bin_stack_start_puts_supervisord_and_everything_under_var_dir(started: Started) -> None:
    assert started.start.returncode == 0, started.start.stdout + started.start.stderr
    assert "bridge READY" in started.start.stdout
    assert f"supervisorctl -c {started.var / 'run' / 'supervisord.conf'}" in started.start.stdout
    assert (started.var / "run" / "supervisor.sock").exists() and _supervisord(started.var) is not None
    assert not (started.home / "var").exists()
    assert started.rpc().getState()["statename"] == "RUNNING"
    ctl = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "supervisorctl"),
            "-c",
            str(started.var / "run" / "supervisord.conf"),
            "status",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ctl.returncode == 0 and ctl.stdout.count("RUNNING") == len(ALL_PROGRAMS), ctl.stdout + ctl.stderr


def test_a_second_start_finds_the_running_supervisord(started: Started) -> None:
    first = _supervisord(started.var)
    assert first is not None
    again = started.run("stack", "start", "--timeout", "30")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout
    assert _supervisord(started.var) == first
    mine = [
        p for p in psutil.process_iter(["cmdline"]) if str(started.var) in " ".join(p.info["cmdline"] or [])
    ]
    assert len([p for p in mine if "supervisord" in " ".join(p.info["cmdline"] or [])]) == 1


def test_gateway_health_reads_the_stack_under_var_dir(started: Started) -> None:
    health = started.run("gateway-health", "--json", "--wait", "40")
    report = json.loads(health.stdout)
    assert health.returncode == 0 and report["status"] == "OK", health.stdout + health.stderr


def test_the_watchdog_restarts_a_hung_program_through_supervisord_under_var_dir(started: Started) -> None:
    old = int(started.info("features")["pid"])
    os.kill(old, signal.SIGSTOP)  # hung: no more heartbeats (the watchdog's restart continues it to stop it)
    try:
        wait_for("features restarted", lambda: started.info("features")["pid"] not in (0, old), 40)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old, signal.SIGCONT)

    def actions() -> list[dict[str, Any]]:
        detail = json.loads((started.var / "run" / "heartbeat-watchdog.json").read_text())["detail"]
        return [a for a in detail["actions"] if a["program"] == "features"]

    [action] = wait_for("the restart in the watchdog's heartbeat", actions, 10)
    assert action["outcome"] == "restarted through supervisord" and action["pid"] == old
    started.info("features")
    wait_for("features RUNNING again", lambda: started.info("features")["statename"] == "RUNNING", 30)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_after_a_real_start(started: Started) -> None:
    var = started.var
    assert _mode(started.home / ".env") == 0o600
    for d in (var, var / "run", var / "log", var / "data"):
        assert _mode(d) == 0o700, d
    ledger = wait_for("the ledger", lambda: next(iter(var.glob("data/ledger*.sqlite")), None), 30)
    logs = sorted(var.glob("log/*.log"))
    names = {p.name for p in logs}
    assert {"supervisord.log", "bridge.log", "executor.log", "bridge.supervisor.log"} <= names, names
    for f in [ledger, *logs, var / "run" / "supervisord.conf", var / "run" / "supervisord.pid"]:
        assert _mode(f) == 0o600, f"{f} is {_mode(f):04o}"


def test_zz_bin_stack_stop_stops_everything(started: Started) -> None:
    pids = {p: int(started.info(p)["pid"]) for p in ("bridge", "executor", "watchdog")}
    stopped = started.run("stack", "stop", timeout=90)
    assert stopped.returncode == 0 and "stack stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    assert _supervisord(started.var) is None
    for program, pid in pids.items():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, program
