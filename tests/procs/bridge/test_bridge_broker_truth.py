"""The bridge tells the broker's truth about orders: a final status ib_async invents on an informational error is
never confirmed, the open-order list is the Gateway's, a cancel never loses the race to its own placement, a
Gateway-sent cancel is confirmed. Real simulator, real ib_async, real loopback TCP; a fresh simulator per test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from procs.gateway_sim.inprocess import GatewaySim
from shared.bus import RequestError
from shared.messages import CancelOrder, OpenOrdersRequest, OrderEvent, PlaceOrder
from tests.procs.bridge.bridge_harness import LiveBridge, bridge_settings, live_bridge, run
from tests.procs.bridge.bridge_harness import wait_until as wait_briefly

WAIT = 20.0  # generous: the machine is shared; each wait returns as soon as its condition holds


async def wait_until(check: Any, what: str, timeout: float = WAIT) -> Any:
    return await wait_briefly(check, what, timeout)


FINAL = ("FILLED", "CANCELLED", "REJECTED", "INACTIVE")
TIF_PRESET = "Order TIF was set to DAY based on order preset."


@pytest.fixture
def sim(stack_env: Path) -> Iterator[GatewaySim]:
    with GatewaySim(speed=60.0) as gateway:
        yield gateway


def buy(
    cid: str, quantity: int = 1, limit: str = "1.00", symbol: str = "AAPL", tif: str = "DAY"
) -> PlaceOrder:
    return PlaceOrder(
        client_order_id=cid,
        symbol=symbol,
        side="BUY",
        quantity=Decimal(quantity),
        limit_price=Decimal(limit),
        tif=tif,  # type: ignore[arg-type]
    )


def events_of(b: LiveBridge, cid: str) -> list[OrderEvent]:
    return [m for m in b.messages("order.") if m.client_order_id == cid]


def working_at_sim(sim: GatewaySim, cid: str) -> list[dict[str, Any]]:
    return [o for o in sim.status()["open_orders"] if o["order_ref"] == cid]


def test_10349_on_a_resting_order_is_never_a_confirmed_end_and_the_order_list_says_it_works(
    sim: GatewaySim,
) -> None:
    async def go() -> tuple[list[OrderEvent], list[OrderEvent], list[OrderEvent], str, list[OrderEvent]]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            ack = await b.api.place_order(buy("preset"))
            await wait_until(lambda: working_at_sim(sim, "preset"), "the order working at the simulator")
            await wait_until(
                lambda: any(e.status == "SUBMITTED" for e in events_of(b, "preset")), "SUBMITTED"
            )
            sim.error(10349, ack.order_id, TIF_PRESET)  # informational: the Gateway keeps the order working
            await wait_until(lambda: any(e.error_code == 10349 for e in events_of(b, "preset")), "the 10349")
            after_error = list(events_of(b, "preset"))
            listed = await b.api.open_orders(OpenOrdersRequest())
            await wait_until(
                lambda: events_of(b, "preset")[-1].status == "SUBMITTED", "announced working again"
            )
            revived = events_of(b, "preset")[len(after_error) :]
            sim.error(10349, ack.order_id, TIF_PRESET)  # again: ib_async marks it Cancelled once more
            await wait_until(lambda: events_of(b, "preset")[-1].error_code == 10349, "the second 10349")
            cancel = await b.api.cancel_order(CancelOrder(client_order_id="preset"))
            await wait_until(lambda: not working_at_sim(sim, "preset"), "no working order at the simulator")
            await wait_until(
                lambda: any(e.status == "CANCELLED" and e.confirmed for e in events_of(b, "preset")),
                "the Gateway's cancel",
            )
            return after_error, listed, revived, cancel.status, events_of(b, "preset")

    after_error, listed, revived, cancel_status, every = run(go(), timeout=120)
    invented = after_error[-1]
    assert (invented.status, invented.ib_status, invented.error_code) == ("REJECTED", "Cancelled", 10349)
    assert not invented.confirmed and "TIF" in invented.reason  # kept readable, never taken as the end
    ours = [e for e in listed if e.client_order_id == "preset"]
    assert [(e.status, e.confirmed) for e in ours] == [("SUBMITTED", True)]
    assert revived and all(e.status == "SUBMITTED" and e.confirmed for e in revived)
    assert cancel_status == "PENDING_CANCEL"  # sent, although ib_async had the order as Cancelled
    before_cancel = every[: every.index(next(e for e in every if e.status == "CANCELLED" and e.confirmed))]
    assert not [e for e in before_cancel if e.status in FINAL and e.confirmed]


def test_fills_after_an_informational_error_are_published_and_the_rest_can_be_cancelled(
    sim: GatewaySim,
) -> None:
    # a million shares at a limit above the market: the simulator fills 500 on arrival, then 500 per pass (4/s)
    async def go() -> tuple[int, int, list[OrderEvent], list[OrderEvent], str]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            ack = await b.api.place_order(buy("chunks", quantity=1_000_000, limit="400.00"))
            await wait_until(lambda: b.messages("fill"), "a first fill")
            sim.error(10349, ack.order_id, TIF_PRESET)
            await wait_until(lambda: any(e.error_code == 10349 for e in events_of(b, "chunks")), "the 10349")
            fills_at_error = len(b.messages("fill"))
            await wait_until(lambda: len(b.messages("fill")) >= fills_at_error + 2, "fills after the 10349")
            listed = [
                e for e in await b.api.open_orders(OpenOrdersRequest()) if e.client_order_id == "chunks"
            ]
            cancel = await b.api.cancel_order(CancelOrder(client_order_id="chunks"))
            await wait_until(lambda: not working_at_sim(sim, "chunks"), "the rest cancelled at the simulator")
            await wait_until(lambda: events_of(b, "chunks")[-1].error_code == 202, "the Gateway's cancel")
            return fills_at_error, len(b.messages("fill")), listed, events_of(b, "chunks"), cancel.status

    fills_at_error, fills, listed, every, cancel_status = run(go(), timeout=120)
    assert fills >= fills_at_error + 2
    assert [(e.status, e.confirmed) for e in listed] == [("PARTIALLY_FILLED", True)]
    assert cancel_status == "PENDING_CANCEL"
    invented = [e for e in every if e.error_code == 10349]
    assert invented and not [e for e in invented if e.confirmed]  # ib_async's Cancelled, shown but in doubt
    later = every[every.index(invented[0]) + 1 :]
    assert any(e.status == "PARTIALLY_FILLED" and e.confirmed for e in later)  # the Gateway's word: working
    confirmed_ends = [e for e in every if e.status in FINAL and e.confirmed]
    assert [e.status for e in confirmed_ends] == ["CANCELLED"] and confirmed_ends[0].filled > 500


def test_a_cancel_the_gateway_sent_is_confirmed_from_the_first_word(sim: GatewaySim) -> None:
    async def go() -> tuple[list[OrderEvent], list[OrderEvent]]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            await b.api.place_order(buy("ioc", tif="IOC"))  # the Gateway cancels an IOC that cannot fill
            await b.api.place_order(buy("asked"))
            await wait_until(lambda: working_at_sim(sim, "asked"), "the resting order at the simulator")
            await b.api.cancel_order(CancelOrder(client_order_id="asked"))
            for cid in ("ioc", "asked"):
                await wait_until(
                    lambda cid=cid: any(e.status == "CANCELLED" for e in events_of(b, cid)),
                    f"{cid} cancelled",
                )
            await asyncio.sleep(0.3)  # the orderStatus that follows the 202 must not change the word
            return events_of(b, "ioc"), events_of(b, "asked")

    ioc, asked = run(go(), timeout=120)
    for every in (ioc, asked):
        ends = [e for e in every if e.status in FINAL]
        assert ends and all(e.status == "CANCELLED" and e.confirmed for e in ends), ends


def test_a_cancel_while_the_placement_waits_for_contract_details_means_it_is_never_sent(
    sim: GatewaySim,
) -> None:
    async def go() -> tuple[str, str, Any, list[OrderEvent]]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            sim.delay("contract-details", 1.5)  # AMZN is not subscribed: its details are not cached yet
            placing = asyncio.ensure_future(b.api.place_order(buy("in-flight", symbol="AMZN")))
            await wait_until(lambda: b.session.orders.get("in-flight") is not None, "the order claimed")
            assert not placing.done()
            cancel = await b.api.cancel_order(CancelOrder(client_order_id="in-flight"))
            with pytest.raises(RequestError, match="cancelled before it was sent") as refused:
                await asyncio.wait_for(placing, 10)
            retry = await b.api.place_order(
                buy("in-flight", symbol="AMZN")
            )  # the executor retries the same id
            with pytest.raises(RequestError, match="not an order the bridge has seen"):
                await b.api.cancel_order(CancelOrder(client_order_id="never-placed"))
            return cancel.status, str(refused.value), retry, events_of(b, "in-flight")

    cancel_status, refusal, retry, every = run(go(), timeout=120)
    assert cancel_status == "CANCELLED" and "nothing was placed" in refusal
    assert retry.duplicate and retry.status == "CANCELLED" and retry.order_id == 0
    assert [(e.status, e.confirmed) for e in every] == [("CANCELLED", True)]
    assert not [o for o in sim.audit()["orders"] if o["orderRef"] == "in-flight"]  # never reached the Gateway


def test_an_option_and_the_stock_of_one_symbol_are_two_positions(sim: GatewaySim) -> None:
    from shared.messages import PositionsRequest

    async def go() -> tuple[list[Any], list[Any]]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            await b.api.place_order(buy("stock", quantity=5, limit="400.00"))  # marketable: fills at once
            await wait_until(lambda: b.messages("fill"), "the stock fill")
            sim.holding("AAPL", 2, "OPT")  # bought by hand, not by the stack
            await wait_until(
                lambda: any(p.sec_type == "OPT" for p in b.messages("position")), "the option's position"
            )
            held = await b.api.positions(PositionsRequest())
            return held, b.messages("position")

    held, streamed = run(go(), timeout=120)
    aapl = sorted((p for p in held if p.symbol == "AAPL"), key=lambda p: p.sec_type)
    assert [(p.sec_type, p.quantity) for p in aapl] == [("OPT", Decimal(2)), ("STK", Decimal(5))]
    option, stock = aapl
    assert stock.con_id == 265598 and option.con_id not in (0, 265598)
    assert option.local_symbol and option.local_symbol != "AAPL" and option.currency == "USD"
    assert all(p.account == "DU****567" for p in held)
    streamed_option = [p for p in streamed if p.sec_type == "OPT"][-1]
    assert (streamed_option.con_id, streamed_option.quantity) == (option.con_id, Decimal(2))
