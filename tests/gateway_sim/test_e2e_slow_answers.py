"""`delay KIND SECONDS`: one kind of request is answered late, as a slow Gateway answers it, while the session's
other requests are answered on time; a slow placeOrder is accepted and filled at once but acknowledged late, its
fill after its acknowledgement. Timings are measured from the client, with lower bounds only."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from ib_async import IB, MarketOrder, Stock

from procs.gateway_sim.inprocess import GatewaySim
from tests.gateway_sim.sim_harness import connect, wait_until

pytestmark = pytest.mark.timeout(60)

DELAY = 1.5
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
Request = Callable[[IB], Awaitable[Any]]

SLOW_REQUESTS: dict[str, Request] = {
    "executions": lambda ib: ib.reqExecutionsAsync(),
    "open-orders": lambda ib: ib.reqAllOpenOrdersAsync(),
    "positions": lambda ib: ib.reqPositionsAsync(),
    "contract-details": lambda ib: ib.reqContractDetailsAsync(Stock("MSFT", "SMART", "USD")),
}


def on_time_requests(slow_kind: str) -> list[Request]:
    """The current time and every other kind: none of them may wait for the slow one."""
    return [lambda ib: ib.reqCurrentTimeAsync()] + [r for k, r in SLOW_REQUESTS.items() if k != slow_kind]


@pytest.mark.parametrize("kind", list(SLOW_REQUESTS))
async def test_a_slow_kind_answers_late_while_the_others_answer_on_time(sim: GatewaySim, kind: str) -> None:
    client = await connect(sim.port, 11)
    try:
        ib = client.ib
        assert sim.delay(kind, DELAY)["delays"] == {kind: DELAY}
        assert sim.status()["faults"]["delays"] == {kind: DELAY}
        started = time.monotonic()
        slow = asyncio.ensure_future(SLOW_REQUESTS[kind](ib))
        for request in on_time_requests(kind):
            await request(ib)
        assert not slow.done()  # every other answer came while this one was held
        answer = await asyncio.wait_for(slow, 20)
        assert time.monotonic() - started >= DELAY
        if kind == "contract-details":
            assert [d.contract.conId for d in answer] == [272093]
    finally:
        client.ib.disconnect()


def messages_in(sim: GatewaySim, client_id: int) -> int:
    return sum(s["msgs_in"] for s in sim.status()["sessions"] if s["client_id"] == client_id)


def _finished(done: list[str], name: str, _future: object) -> None:
    done.append(name)


async def test_slow_answers_of_one_kind_keep_their_order_and_delay_0_ends_it(sim: GatewaySim) -> None:
    client = await connect(sim.port, 12)
    try:
        ib = client.ib
        sim.delay("executions", DELAY)
        done: list[str] = []
        before = messages_in(sim, 12)
        first, second = ib.reqExecutionsAsync(), ib.reqExecutionsAsync()
        await wait_until(lambda: messages_in(sim, 12) >= before + 2, what="both requests to arrive")
        sim.delay("executions", 0)  # what is held stays held; a new request queues behind it
        third = ib.reqExecutionsAsync()
        for name, future in (("first", first), ("second", second), ("third", third)):
            asyncio.ensure_future(future).add_done_callback(functools.partial(_finished, done, name))
        await asyncio.wait_for(asyncio.gather(first, second, third), 20)
        await asyncio.sleep(0)
        assert done == ["first", "second", "third"]
        assert "delays" not in sim.status()["faults"]
        sim.delay("positions", DELAY)  # a kind that is slow now, to show that executions no longer are
        slow = asyncio.ensure_future(ib.reqPositionsAsync())
        await asyncio.wait_for(ib.reqExecutionsAsync(), 20)
        assert not slow.done()
        await asyncio.wait_for(slow, 20)
    finally:
        client.ib.disconnect()


async def test_a_slow_place_is_accepted_and_filled_at_once_but_acknowledged_late(sim: GatewaySim) -> None:
    client = await connect(sim.port, 13)
    try:
        ib = client.ib
        sim.delay("place", DELAY)
        log: list[str] = []
        started = time.monotonic()
        trade = ib.placeOrder(AAPL, MarketOrder("BUY", 10, orderRef="ex-slow"))
        trade.statusEvent.connect(lambda t: log.append(f"status:{t.orderStatus.status}"), keep_ref=True)
        trade.fillEvent.connect(lambda t, f: log.append("exec"), keep_ref=True)
        await wait_until(
            lambda: [o["status"] for o in sim.audit()["orders"]] == ["Filled"],
            what="the simulator to fill the order at once",
        )
        await ib.reqCurrentTimeAsync()  # the session's other answers go out meanwhile
        assert trade.orderStatus.status == "PendingSubmit" and not trade.fills  # not acknowledged yet
        await wait_until(lambda: trade.orderStatus.status == "Filled" and trade.fills, timeout=20)
        assert time.monotonic() - started >= DELAY
        assert log.index("status:Submitted") < log.index("exec")  # the acknowledgement before the fill
        assert sum(f.execution.shares for f in trade.fills) == 10
    finally:
        client.ib.disconnect()
