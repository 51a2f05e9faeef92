"""The watchdog's thin parts: heartbeat intake (malformed ones counted and ignored), and carrying out a restart
through a supervisord fake that raises real xmlrpc Faults (superlance's dummy style), with the hang-up-then-kill
fallback on real processes this test starts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from procs.watchdog.act import Supervisor, hang_up_then_kill, left_running, restart
from procs.watchdog.app import listen_for_heartbeats
from procs.watchdog.core import Watchdog
from procs.watchdog.model import Decision, Rules
from shared.bus.factory import MemoryBus
from shared.bus.memory import MemoryPublisher
from shared.messages import Alert, Heartbeat

BAD_NAME, ALREADY_STARTED, NOT_RUNNING = 10, 60, 70


class DummyRPC:
    """supervisord's `supervisor.*` namespace for one program; `faults` maps a method to the Fault it raises."""

    def __init__(self, pid: int, faults: dict[str, int] | None = None, broken: bool = False) -> None:
        self.pid, self.state = pid, "RUNNING"
        self.faults = faults or {}
        self.broken = broken
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def _call(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        if self.broken:
            raise ConnectionRefusedError(111, "Connection refused")
        if method in self.faults:
            raise xmlrpc.client.Fault(self.faults[method], f"{method} refused")

    def getProcessInfo(self, name: str) -> dict[str, Any]:  # noqa: N802 - supervisord's names
        self._call("getProcessInfo", name)
        return {"name": name, "group": name, "statename": self.state, "pid": self.pid, "start": 0}

    def stopProcess(self, name: str, wait: bool) -> bool:  # noqa: N802
        self._call("stopProcess", name, wait)
        self.state = "STOPPED"
        return True

    def signalProcess(self, name: str, sig: str) -> bool:  # noqa: N802
        self._call("signalProcess", name, sig)
        return True

    def startProcess(self, name: str, wait: bool) -> bool:  # noqa: N802
        self._call("startProcess", name, wait)
        self.state, self.pid = "RUNNING", self.pid + 1
        return True


class DummySupervisor(Supervisor):
    def __init__(self, rpc: DummyRPC) -> None:
        super().__init__(Path("/nonexistent/supervisor.sock"))
        self.dummy = rpc

    def rpc(self) -> Any:
        return self.dummy


def restart_of(pid: int, create_time: float = 0.0) -> Decision:
    return Decision(
        "RESTART",
        "heartbeat",
        "WARNING",
        "hung",
        program="bridge",
        pid=pid,
        evidence={"create_time": create_time},
    )


@pytest.fixture
def sleeper() -> Iterator[psutil.Process]:
    """A process of our own to be restarted the hard way (supervisord unreachable)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield psutil.Process(proc.pid)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait()


def test_a_restart_goes_stop_continue_start_through_supervisord() -> None:
    rpc = DummyRPC(pid=10)
    assert restart(DummySupervisor(rpc), restart_of(10), dry_run=False) == "restarted through supervisord"
    methods = [m for m, _ in rpc.calls if m != "getProcessInfo"]
    assert methods == ["stopProcess", "signalProcess", "startProcess"]
    assert ("signalProcess", ("bridge", "CONT")) in rpc.calls


def test_dry_run_touches_nothing() -> None:
    rpc = DummyRPC(pid=10)
    assert restart(DummySupervisor(rpc), restart_of(10), dry_run=True).startswith("dry run")
    assert rpc.calls == []


def test_a_program_that_already_has_a_new_pid_is_left_alone() -> None:
    rpc = DummyRPC(pid=11)
    assert restart(DummySupervisor(rpc), restart_of(10), dry_run=False).startswith("skipped")
    assert [m for m, _ in rpc.calls] == ["getProcessInfo"]


def test_not_running_and_already_started_faults_still_end_in_a_running_program() -> None:
    rpc = DummyRPC(pid=10, faults={"stopProcess": NOT_RUNNING, "startProcess": ALREADY_STARTED})
    rpc.state = "EXITED"
    assert restart(DummySupervisor(rpc), restart_of(10), dry_run=False) == "restarted through supervisord"


def test_a_fault_from_supervisord_is_reported_and_nothing_is_killed(sleeper: psutil.Process) -> None:
    rpc = DummyRPC(pid=sleeper.pid, faults={"stopProcess": BAD_NAME})
    outcome = restart(DummySupervisor(rpc), restart_of(sleeper.pid, sleeper.create_time()), dry_run=False)
    assert outcome.startswith("not restarted: supervisord refused")
    assert sleeper.is_running() and sleeper.status() != psutil.STATUS_ZOMBIE


def test_a_refused_start_after_the_stop_is_not_taken_for_a_restart_that_ended_nothing() -> None:
    rpc = DummyRPC(pid=10, faults={"startProcess": BAD_NAME})
    outcome = restart(DummySupervisor(rpc), restart_of(10), dry_run=False)
    assert outcome.startswith("stopped, but supervisord refused to start it")
    assert not left_running(outcome)  # so the watchdog waits for it to come back, and alerts if it does not
    assert left_running("not restarted: supervisord refused (BAD_NAME)")


def test_with_supervisord_unreachable_it_falls_back_to_hanging_up(sleeper: psutil.Process) -> None:
    rpc = DummyRPC(pid=sleeper.pid, broken=True)
    outcome = restart(DummySupervisor(rpc), restart_of(sleeper.pid, sleeper.create_time()), dry_run=False)
    assert outcome.startswith("supervisord failed") and "ended by SIGHUP" in outcome
    assert not sleeper.is_running() or sleeper.status() == psutil.STATUS_ZOMBIE


def test_the_fallback_never_signals_a_reused_pid(sleeper: psutil.Process) -> None:
    assert hang_up_then_kill(sleeper.pid, sleeper.create_time() - 100).startswith("not killed")
    assert sleeper.is_running() and sleeper.status() != psutil.STATUS_ZOMBIE


def test_the_fallback_stops_a_frozen_process(sleeper: psutil.Process) -> None:
    sleeper.suspend()
    assert hang_up_then_kill(sleeper.pid, sleeper.create_time(), wait=5).startswith("ended by SIGHUP")


def test_the_fallback_kills_a_process_that_ignores_the_hang_up() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); time.sleep(60)",
        ]
    )
    try:
        p = psutil.Process(proc.pid)
        time.sleep(0.5)  # let it install SIG_IGN
        assert hang_up_then_kill(p.pid, p.create_time(), wait=1).startswith("killed after SIGHUP")
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_malformed_heartbeats_are_counted_and_ignored() -> None:
    async def scenario() -> Watchdog:
        bus = MemoryBus()
        # not strict: this publisher must be able to send what the contract forbids, as a broken program would
        good = MemoryPublisher(bus.hub, "inproc://hb-good", "bridge", strict=False)
        sub = bus.subscriber(["inproc://hb-good", "inproc://hb-raw"], ["heartbeat."])
        wd = Watchdog(Rules(14002), DummySupervisor(DummyRPC(1)))
        stop = asyncio.Event()
        task = asyncio.create_task(listen_for_heartbeats(sub, wd, stop))
        await asyncio.sleep(0.2)  # the listener is waiting
        good.publish("heartbeat.features", Alert(severity="INFO", code="x", message="not a heartbeat"))
        good.publish("heartbeat.strategy", Heartbeat(program="bridge", pid=5, state="READY", started_ns=0))
        bus.hub.send_raw("inproc://hb-raw", [b"heartbeat.executor", b"\xc1 not msgpack"])
        good.publish("heartbeat.bridge", Heartbeat(program="bridge", pid=5, state="READY", started_ns=0))
        for _ in range(50):
            if "bridge" in wd.heartbeats and wd.detail()["malformed_heartbeats"] >= 3:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
        good.close()
        sub.close()
        bus.close()
        return wd

    wd = asyncio.run(scenario())
    assert list(wd.heartbeats) == ["bridge"] and wd.heartbeats["bridge"].pid == 5
    assert wd.detail()["malformed_heartbeats"] == 3
