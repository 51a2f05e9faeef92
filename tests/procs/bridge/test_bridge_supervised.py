"""The bridge under a real supervisord: SIGKILL it and supervisord brings it back to READY; stop it and it
closes its session (no CLOSE_WAIT is left on the simulator's port, on either side)."""

from __future__ import annotations

import os
import signal
import time

import msgspec
import psutil
import pytest

from shared.bus import req_endpoint, request_once
from shared.messages import HealthReport, HealthRequest
from tests.support.stack import Stack, running_stack, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def health(stack: Stack) -> HealthReport:
    reply = request_once(req_endpoint(stack.settings, "bridge"), HealthRequest(), timeout=0.5)
    assert reply.ok, reply.error
    return msgspec.convert(reply.result, HealthReport)


def ready(stack: Stack) -> HealthReport:
    return wait_for("bridge READY", lambda: (h := health(stack)).state == "READY" and h, timeout=20)  # type: ignore[no-any-return]


def close_waits_on(port: int) -> list[tuple[int | None, object, object]]:
    return [
        (c.pid, c.laddr, c.raddr)
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_CLOSE_WAIT
        and ((c.laddr and c.laddr.port == port) or (c.raddr and c.raddr.port == port))
    ]


def test_sigkilled_bridge_is_restarted_to_ready_and_a_stop_leaves_no_close_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", REPO)
    with running_stack({"SYMBOLS": "AAPL,MSFT"}, programs=("gateway_sim", "bridge"), timeout=30) as stack:
        port = stack.settings.ib_port
        first = ready(stack)
        old_pid = stack.info("bridge")["pid"]
        os.kill(old_pid, signal.SIGKILL)  # our own supervised bridge, by its pid
        wait_for("a new bridge pid", lambda: stack.info("bridge")["pid"] not in (0, old_pid), timeout=20)
        stack.wait_state("bridge", "RUNNING", timeout=20)
        again = ready(stack)
        assert again.client_id == first.client_id  # the same fixed client id, no rotation
        assert again.connected_since_ns > first.connected_since_ns

        stack.rpc().supervisor.stopProcess("bridge")
        info = stack.info("bridge")
        assert info["statename"] == "STOPPED" and info["exitstatus"] == 0, stack.log("bridge")[-2000:]
        time.sleep(0.5)  # a lingering socket would show by now
        assert close_waits_on(port) == []
