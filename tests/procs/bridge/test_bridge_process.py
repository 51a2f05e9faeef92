"""The bridge as the real supervised program (`python -m procs.bridge`) against the simulator subprocess: READY,
bars to a subscriber in another process, malformed requests answered by field, one order per client order id,
and a SIGTERM that closes the session once and exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq

from shared.bus import RequestClient, Subscriber, new_context, pub_endpoint, req_endpoint, request_once
from shared.config import Settings, load_settings
from shared.messages import Bar, HealthReport, HealthRequest, OrderAck, PlaceOrder
from tests.support.sim import VENV_PYTHON, RunningSim, running_sim

REPO = Path(__file__).resolve().parents[3]
SYMBOLS = "AAPL,MSFT"


@dataclass
class BridgeProcess:
    proc: subprocess.Popen[bytes]
    settings: Settings
    home: Path

    def log(self) -> str:
        path = self.settings.log_dir / "bridge.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def health(self, timeout: float = 2.0) -> HealthReport:
        reply = request_once(req_endpoint(self.settings, "bridge"), HealthRequest(), timeout=timeout)
        assert reply.ok, reply.error
        return msgspec.convert(reply.result, HealthReport)

    def wait_ready(self, timeout: float = 20.0) -> HealthReport:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"bridge exited {self.proc.returncode}: {self.log()}"
            try:
                last = self.health(timeout=0.5)
                if last.state == "READY":
                    return last
            except Exception as exc:  # not answering yet
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"bridge not READY in {timeout} s (last: {last!r}): {self.log()}")


def start_bridge(sim: RunningSim, client_id: int = 1) -> BridgeProcess:
    home = Path(tempfile.mkdtemp(prefix="ibb", dir="/tmp"))
    values = {
        "STACK_HOME": str(home),
        "VAR_DIR": str(home / "var"),
        "GATEWAY": "sim",
        "IB_PORT": str(sim.port),
        "IB_CLIENT_ID": str(client_id),
        "SYMBOLS": SYMBOLS,
        "HEARTBEAT_SECONDS": "0.5",
        "BRIDGE_HEARTBEAT_SECONDS": "0.5",
        "BRIDGE_HEARTBEAT_TIMEOUT": "2",
    }
    env = {k: v for k, v in os.environ.items() if k not in values} | values
    env["PYTHONPATH"] = str(REPO)
    out = open(home / "stdout.txt", "wb")  # noqa: SIM115 - the child holds it; closed with the home
    proc = subprocess.Popen(
        [str(VENV_PYTHON), "-m", "procs.bridge"], cwd=home, env=env, stdout=out, stderr=out
    )
    out.close()
    settings = load_settings(env_file=home / ".env", var_dir=str(home / "var"), ib_port=sim.port)
    return BridgeProcess(proc, settings, home)


def stop_bridge(bridge: BridgeProcess) -> int:
    try:
        if bridge.proc.poll() is None:
            bridge.proc.terminate()
        try:
            return bridge.proc.wait(15)
        except subprocess.TimeoutExpired:
            bridge.proc.kill()
            return bridge.proc.wait(5)
    finally:
        shutil.rmtree(bridge.home, ignore_errors=True)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    with running_sim(speed=60.0) as running:
        yield running


@pytest.fixture(scope="module")
def bridge(sim: RunningSim) -> Iterator[BridgeProcess]:
    b = start_bridge(sim)
    try:
        b.wait_ready()
        yield b
    finally:
        stop_bridge(b)


def test_the_bridge_program_becomes_ready_and_says_so_in_its_heartbeat(bridge: BridgeProcess) -> None:
    health = bridge.wait_ready()
    assert health.client_id == 1 and health.accounts == ["DU****567"] and health.server_version == 178
    path = bridge.settings.run_dir / "heartbeat-bridge.json"
    deadline = time.monotonic() + 5
    while (beat := json.loads(path.read_text()))["state"] != "READY" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert beat["program"] == "bridge" and beat["state"] == "READY"
    assert beat["detail"]["subscriptions"] == 4 and beat["counters"]["heartbeats_ok"] >= 1


def test_bars_reach_a_subscriber_in_another_process(bridge: BridgeProcess) -> None:
    async def listen() -> list[Bar]:
        ctx = new_context()
        sub = Subscriber(ctx, [pub_endpoint(bridge.settings, "bridge")], ["bar."])
        bars: list[Bar] = []
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(bars) < 8:
                got = await sub.recv(timeout=0.5)
                if got is not None and isinstance(got.msg, Bar):
                    bars.append(got.msg)
        finally:
            sub.close()
            ctx.destroy(linger=0)
        return bars

    bars = asyncio.run(listen())
    assert {b.symbol for b in bars} == {"AAPL", "MSFT"} and all(b.source == "bridge" for b in bars)
    assert all(b.bar_seconds == 5 and b.start_ns % (5 * 10**9) == 0 for b in bars)
    for symbol in ("AAPL", "MSFT"):
        starts = [b.start_ns for b in bars if b.symbol == symbol]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)


def raw_request(settings: Settings, body: bytes, timeout: float = 3.0) -> dict[str, Any]:
    """One request as raw bytes, the way a buggy client would send it."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(req_endpoint(settings, "bridge"))
        sock.send(body)
        assert sock.poll(int(timeout * 1000)), "no reply to a malformed request"
        reply: dict[str, Any] = msgspec.msgpack.decode(sock.recv())
        return reply
    finally:
        sock.close(linger=0)
        ctx.term()


@pytest.mark.parametrize(
    ("request_map", "field"),
    [
        ({"kind": "ContractRequest", "req_id": "r1"}, "symbol"),
        (
            {
                "kind": "PlaceOrder",
                "req_id": "r2",
                "client_order_id": "x",
                "symbol": "AAPL",
                "side": "HOLD",
                "quantity": "1",
            },
            "side",
        ),
        (
            {
                "kind": "PlaceOrder",
                "req_id": "r3",
                "client_order_id": "x",
                "symbol": "AAPL",
                "side": "BUY",
                "quantity": "-5",
                "limit_price": "1.00",
            },
            "quantity",
        ),
        (
            {
                "kind": "PlaceOrder",
                "req_id": "r4",
                "client_order_id": "x",
                "symbol": "AAPL",
                "side": "BUY",
                "quantity": "1",
            },
            "limit_price",
        ),
        ({"kind": "HistoryRequest", "req_id": "r5", "symbol": "AAPL", "bar_seconds": 7}, "bar_seconds"),
        ({"kind": "ContractRequest", "req_id": "r6", "symbol": "not a ticker"}, "symbol"),
        ({"kind": "Teleport", "req_id": "r7"}, "kind"),
    ],
)
def test_a_malformed_request_gets_an_error_reply_naming_the_field(
    bridge: BridgeProcess, request_map: dict[str, Any], field: str
) -> None:
    reply = raw_request(bridge.settings, msgspec.msgpack.encode(request_map))
    assert reply["ok"] is False and field in reply["error"], reply
    assert reply["req_id"] == request_map["req_id"]
    assert bridge.health().state == "READY"  # nothing crashed


def test_garbage_bytes_get_an_error_reply_and_the_bridge_keeps_serving(bridge: BridgeProcess) -> None:
    reply = raw_request(bridge.settings, b"\xc1\x00 not msgpack")
    assert reply["ok"] is False and "malformed" in reply["error"]
    assert bridge.proc.poll() is None and bridge.health().state == "READY"


def test_the_same_client_order_id_placed_three_times_is_one_order_at_the_simulator(
    bridge: BridgeProcess, sim: RunningSim
) -> None:
    order = PlaceOrder(
        client_order_id="once-only-1",
        symbol="AAPL",
        side="BUY",
        quantity=Decimal(2),
        limit_price=Decimal("1.00"),
    )

    async def place_concurrently() -> list[OrderAck]:
        ctx = new_context()
        clients = [RequestClient(ctx, req_endpoint(bridge.settings, "bridge"), timeout=5.0) for _ in range(3)]
        try:
            results = await asyncio.gather(*(c.call(order) for c in clients))
            return [msgspec.convert(r, OrderAck) for r in results]
        finally:
            for c in clients:
                c.close()
            ctx.destroy(linger=0)

    acks = asyncio.run(place_concurrently())
    assert sorted(a.duplicate for a in acks) == [False, True, True]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        mine = [o for o in sim.status()["open_orders"] if o["order_ref"] == "once-only-1"]
        if mine:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # a second order would have arrived by now
    mine = [o for o in sim.status()["open_orders"] if o["order_ref"] == "once-only-1"]
    assert len(mine) == 1 and mine[0]["client_id"] == 1 and mine[0]["qty"] in ("2", "2.0")
    again = asyncio.run(place_concurrently())  # a retry much later: still the same one order
    assert all(a.duplicate and a.order_id == mine[0]["order_id"] for a in again)


def test_sigterm_closes_the_session_once_and_exits_0(sim: RunningSim) -> None:
    b = start_bridge(sim, client_id=7)
    try:
        b.wait_ready()
        assert 7 in [s["client_id"] for s in sim.status()["sessions"]]
        b.proc.send_signal(signal.SIGTERM)
        code = b.proc.wait(15)
        log = b.log()
    finally:
        stop_bridge(b)
    assert code == 0, log
    deadline = time.monotonic() + 5
    while 7 in [s["client_id"] for s in sim.status()["sessions"]] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 7 not in [s["client_id"] for s in sim.status()["sessions"]]
    assert "Gateway session closed" in log


def test_a_malformed_setting_stops_start_up_with_one_line_naming_the_key_and_exit_78(short_tmp: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IB_", "STACK_HOME", "VAR_DIR"))}
    env |= {"STACK_HOME": str(short_tmp), "IB_PORT": "not-a-port", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [str(VENV_PYTHON), "-m", "procs.bridge"], cwd=short_tmp, env=env, capture_output=True, timeout=30
    )
    lines = [line for line in done.stderr.decode().splitlines() if line.strip()]
    assert done.returncode == 78
    assert len(lines) == 1 and "IB_PORT" in lines[0] and "Traceback" not in lines[0], lines
