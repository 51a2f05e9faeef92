"""A burst of 500 order requests through the bridge's real request socket never breaks IB's 50 messages/s:
the simulator enforces it (error 100 and a dropped socket), so one session from start to end proves it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from procs.gateway_sim.inprocess import GatewaySim
from shared.bus import RequestClient, RequestServer, new_context
from shared.messages import BridgeRequest, OrderAck, PlaceOrder
from tests.procs.bridge.bridge_harness import bridge_settings, live_bridge, run, wait_until

CLIENTS, PER_CLIENT = 25, 20


@pytest.fixture
def sim(stack_env: Path) -> Iterator[GatewaySim]:
    with GatewaySim(speed=60.0) as gateway:  # pacing enforcement is on by default
        assert "pacing" not in gateway.status()["faults"]
        yield gateway


def test_a_burst_of_500_requests_never_exceeds_the_pacing_limit(sim: GatewaySim, short_tmp: Path) -> None:
    # the highest rate the settings allow: the bucket must still keep every second under IB's 50
    settings = bridge_settings(sim.port, bridge_msgs_per_second=50)
    endpoint = f"ipc://{short_tmp}/bridge.req"

    async def one_client(ctx: object, n: int) -> list[OrderAck]:
        client = RequestClient(ctx, endpoint, timeout=40.0, retries=0)  # type: ignore[arg-type]
        acks = []
        try:
            for i in range(PER_CLIENT):
                req = PlaceOrder(
                    client_order_id=f"burst-{n}-{i}",
                    symbol="AAPL",
                    side="BUY",
                    quantity=Decimal(1),
                    limit_price=Decimal("1.00"),
                )
                acks.append(msgspec.convert(await client.call(req, idempotent=True), OrderAck))
        finally:
            client.close()
        return acks

    async def go() -> tuple[list[OrderAck], float, int]:
        ctx = new_context()
        try:
            async with live_bridge(settings) as b:
                await b.wait_state("READY")
                peer = sim.status()["sessions"][0]["peer_port"]
                server = RequestServer(ctx, endpoint, BridgeRequest, b.api.handle)
                stop = asyncio.Event()
                serving = asyncio.create_task(server.serve(stop))
                try:
                    results = await asyncio.gather(*(one_client(ctx, n) for n in range(CLIENTS)))
                finally:
                    stop.set()
                    await serving
                    server.close()
                await wait_until(
                    lambda: len(sim.status()["open_orders"]) == CLIENTS * PER_CLIENT, "500 orders"
                )
                sessions = sim.status()["sessions"]
                assert [s["peer_port"] for s in sessions] == [peer]  # the same socket from start to end
                return (
                    [a for r in results for a in r],
                    b.session.counters["connect_attempts"],
                    b.session.outbox.max_backlog,
                )
        finally:
            ctx.destroy(linger=0)

    acks, attempts, backlog = run(go(), timeout=60)
    assert len({a.order_id for a in acks}) == CLIENTS * PER_CLIENT and not any(a.duplicate for a in acks)
    assert attempts == 1  # never dropped for pacing (error 100 closes the socket)
    assert backlog > 0  # the bucket did hold messages back: the burst was real
    assert sim.status()["bad_input"] == 0
