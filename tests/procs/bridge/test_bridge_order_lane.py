"""Orders never wait behind a backlog of subscriptions: after a 1101 (market data lost) the bridge re-issues
every subscription, more than the pacing window holds, and an order placed meanwhile reaches the real simulator
while those are still queued; the simulator's own pacing check (error 100 and a dropped socket) proves the
reserve never breaks IB's 50 messages/s."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from procs.gateway_sim.inprocess import GatewaySim
from shared.messages import OrderAck, PlaceOrder
from tests.procs.bridge.bridge_harness import bridge_settings, live_bridge, run, wait_until

SYMBOLS = "AAPL,MSFT,SPY,QQQ,NVDA,AMZN,GOOGL,META,TSLA,IWM,JPM,V,JNJ,XOM,WMT,PG,MA,HD,KO,PEP"


@pytest.fixture
def sim(stack_env: Path) -> Iterator[GatewaySim]:
    with GatewaySim(speed=10.0) as gateway:  # pacing enforcement is on by default
        yield gateway


def test_an_order_overtakes_the_resubscriptions_after_1101(sim: GatewaySim) -> None:
    # The default 45 messages per window, 22 of them kept for orders: the 40 re-subscriptions (and the heartbeats
    # meanwhile) need two to three windows. The waits are generous: a loaded machine stretches every window.
    settings = bridge_settings(sim.port, symbols=SYMBOLS)

    async def go() -> tuple[int, float, int]:
        async with live_bridge(settings) as b:
            await b.wait_state("READY", timeout=10)
            outbox = b.session.outbox
            assert outbox.reserve == 22
            await wait_until(
                lambda: b.session.counters.get("subscriptions_issued", 0) >= 40 and outbox.backlog == 0,
                "the start-up subscriptions sent",
                30,
            )
            assert await b.session.broker.contract_details("AAPL") is not None
            sim.error(1101)  # data lost: every subscription must be asked for again
            await wait_until(lambda: outbox.backlog > 10, "the re-subscriptions queued", 5)
            ack = b.api.answer_now(
                PlaceOrder(
                    client_order_id="lane-1",
                    symbol="AAPL",
                    side="BUY",
                    quantity=Decimal(1),
                    limit_price=Decimal("1.00"),  # far below the market: it stays open
                )
            )
            assert isinstance(ack, OrderAck)
            await wait_until(lambda: sim.status()["open_orders"], "the order at the simulator", 5)
            still_queued = outbox.backlog
            await wait_until(lambda: outbox.backlog == 0, "the re-subscriptions sent", 30)
            return still_queued, b.session.counters["connect_attempts"], sim.status()["bad_input"]

    still_queued, attempts, bad_input = run(go(), timeout=90)
    assert still_queued > 0, "the order waited behind the subscriptions"
    assert attempts == 1  # never dropped for pacing (the simulator sends 100 and closes above 50/s)
    assert bad_input == 0
