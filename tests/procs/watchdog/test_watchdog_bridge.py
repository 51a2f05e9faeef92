"""The watchdog and gateway-health with the real simulator and the real bridge under a real supervisord.

The simulator stands in for the Gateway: it must never be signalled. Tests run in order on one stack:
healthy report, a frozen bridge whose session the simulator drops, then Gateway-side zombies (lazy close).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ib_async import IB

from procs.cli import gateway_health
from procs.gateway_sim.control import control_path, request
from procs.watchdog.snapshot import take_snapshot
from shared.bus import RequestTimeout, request_once
from shared.messages import HealthReport, HealthRequest
from tests.procs.watchdog.watchkit import REPO, AlertTap, watchdog_detail
from tests.support.stack import Stack, running_stack, wait_for

HEALTH = REPO / "bin" / "gateway-health"


@dataclass
class Scene:
    """The lead's running_stack (the real supervisord.conf) with the simulator, the bridge and the watchdog."""

    stack: Stack
    tap: AlertTap

    @property
    def port(self) -> int:
        return self.stack.settings.ib_port

    @property
    def run_dir(self) -> Path:
        return self.stack.settings.run_dir

    def pid(self, program: str) -> int:
        return int(self.stack.info(program)["pid"])

    def watchdog_detail(self) -> dict[str, Any]:
        return watchdog_detail(self.run_dir)

    def ctl(self, *argv: str) -> dict[str, Any]:
        answer = request(control_path(self.run_dir, self.port), list(argv), timeout=5)
        assert answer.get("ok"), answer
        return answer

    def bridge_health(self) -> HealthReport | None:
        try:
            reply = request_once(f"ipc://{self.run_dir / 'bridge.req'}", HealthRequest(), timeout=1.0)
        except RequestTimeout:
            return None
        return msgspec.convert(reply.result, type=HealthReport) if reply.ok else None

    def ready_pid(self) -> int:
        """The bridge's pid once it says READY."""
        report = wait_for(
            "bridge READY", lambda: (r := self.bridge_health()) is not None and r.state == "READY", 30
        )
        assert report
        return self.pid("bridge")

    def health(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HEALTH), *args], env=self.stack.env(), capture_output=True, text=True, timeout=30
        )


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    fast = {"WATCHDOG_SCAN_SECONDS": "0.5", "HEARTBEAT_SECONDS": "0.3"}
    programs = ("gateway_sim", "bridge", "watchdog")
    with running_stack(fast, programs=programs) as stack:
        rpc = stack.rpc().supervisor
        for info in rpc.getAllProcessInfo():  # this stack is only these three programs
            if info["name"] not in programs:
                rpc.removeProcessGroup(info["group"])
        tap = AlertTap(f"ipc://{stack.settings.run_dir / 'watchdog.pub'}")
        try:
            yield Scene(stack, tap)
        finally:
            tap.close()


def test_gateway_health_on_a_healthy_stack_is_ok_and_never_connects_to_the_gateway_port(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scene.ready_pid()
    wait_for("the watchdog's first scan", lambda: scene.watchdog_detail().get("last_scan_ns"), 10)
    connects: list[Any] = []
    real_connect = socket.socket.connect

    def recording_connect(self: socket.socket, address: Any) -> None:
        connects.append(address)
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)

    def recording_connect_ex(self: socket.socket, address: Any) -> int:
        connects.append(address)
        return 111  # ECONNREFUSED: nothing would be sent anyway

    monkeypatch.setattr(socket.socket, "connect_ex", recording_connect_ex)
    monkeypatch.setenv("STACK_HOME", str(scene.stack.home))
    code = gateway_health.main([])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("gateway-health: OK") and "READY" in out and "WARNING" not in out
    assert all(not (isinstance(a, tuple) and scene.port in a) for a in connects), connects
    assert any(isinstance(a, str) and a.endswith("supervisor.sock") for a in connects), (
        "it did ask supervisord"
    )


def test_a_frozen_bridge_whose_session_was_dropped_is_restarted_and_ready_again(scene: Scene) -> None:
    sim_pid = int(scene.pid("gateway_sim"))
    frozen = scene.ready_pid()
    os.kill(frozen, signal.SIGSTOP)  # a process our supervisord started: hung, it cannot see the FIN
    assert scene.ctl("drop")["closed"] >= 1
    held = wait_for(
        "the frozen bridge in CLOSE_WAIT",
        lambda: [cw.side for cw in take_snapshot(scene.port, [frozen]).close_waits if cw.pid == frozen],
        5,
        interval=0.02,
    )
    assert held == ["client"]
    wait_for("a new bridge", lambda: scene.pid("bridge") not in (0, frozen), 20)
    assert scene.ready_pid() != frozen
    [action] = [a for a in scene.watchdog_detail()["actions"] if a["program"] == "bridge"]
    assert (action["rule"], action["pid"], action["outcome"]) == (
        "client-close-wait",
        frozen,
        "restarted through supervisord",
    )
    assert int(scene.pid("gateway_sim")) == sim_pid, "the simulator is never touched"


def test_gateway_side_zombies_from_lazy_close_give_a_warning_with_the_remedy_and_nothing_is_killed(
    scene: Scene,
) -> None:
    sim_pid = int(scene.pid("gateway_sim"))
    bridge = scene.ready_pid()
    scene.ctl("lazy-close", "on")
    # another API client (its own client id) ends its session; the lazy simulator keeps its side open
    ib = IB()
    ib.connect("127.0.0.1", scene.port, clientId=77, timeout=10)
    ib.disconnect()
    wait_for("a Gateway-side CLOSE_WAIT", lambda: take_snapshot(scene.port).by_side("gateway"), 10)
    wait_for("the watchdog's report", lambda: "watchdog.gateway-close-wait" in scene.tap.codes(), 10)
    time.sleep(1.5)  # three more scans: still reported once, nothing restarted

    result = scene.health()
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("gateway-health: WARNING")
    [line] = [ln for ln in result.stdout.splitlines() if "gateway CLOSE_WAIT" in ln]
    assert "WARNING" in line and "1 dead API socket" in line
    assert "2FA" in result.stdout and "IBC" in result.stdout
    doc = json.loads(scene.health("--json").stdout)
    assert doc["status"] == "WARNING" and doc["close_wait"]["gateway_side"] == 1

    assert scene.tap.codes().count("watchdog.gateway-close-wait") == 1
    assert int(scene.pid("gateway_sim")) == sim_pid
    assert int(scene.pid("bridge")) == bridge
    assert scene.watchdog_detail()["close_wait_gateway"] == 1

    scene.ctl("lazy-close", "off")  # closes the lingering sessions: healthy again
    assert scene.health("--wait", "10").returncode == 0
