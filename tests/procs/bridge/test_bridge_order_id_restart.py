"""Order ids never repeat across bridge restarts, whatever nextValidId a restarted Gateway sends; and an order the
Gateway still refuses as a duplicate id (103) goes out again once, under a fresh id, never twice. Real simulator
(which answers 103 for a used id), real ib_async, two bridge sessions one after the other on one data directory."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from procs.bridge.order_ids import FILE_NAME
from procs.gateway_sim.inprocess import GatewaySim
from shared.config import Settings
from shared.messages import CancelOrder, OrderEvent, PlaceOrder
from tests.procs.bridge.bridge_harness import LiveBridge, bridge_settings, live_bridge, run
from tests.procs.bridge.bridge_harness import wait_until as wait_briefly

WAIT = 20.0  # generous: the machine is shared; each wait returns as soon as its condition holds


async def wait_until(check: Any, what: str, timeout: float = WAIT) -> Any:
    return await wait_briefly(check, what, timeout)


EARLIER_ORDERS = 10  # enough ids that the second bridge's first one falls among them after a rollback


@pytest.fixture
def sim(stack_env: Path) -> Iterator[GatewaySim]:
    with GatewaySim(speed=60.0) as gateway:
        yield gateway


def resting(cid: str) -> PlaceOrder:
    return PlaceOrder(
        client_order_id=cid, symbol="AAPL", side="BUY", quantity=Decimal(1), limit_price=Decimal("1.00")
    )


def working_at_sim(sim: GatewaySim, cid: str) -> list[dict[str, Any]]:
    return [o for o in sim.status()["open_orders"] if o["order_ref"] == cid]


def events_of(b: LiveBridge, cid: str) -> list[OrderEvent]:
    return [m for m in b.messages("order.") if m.client_order_id == cid]


def earlier_bridge_places_and_cancels(sim: GatewaySim, settings: Settings) -> list[int]:
    """A first bridge process uses order ids, then its orders end (completed orders carry no order id)."""

    async def go() -> list[int]:
        async with live_bridge(settings) as b:
            await b.wait_state("READY")
            ids = [(await b.api.place_order(resting(f"early-{i}"))).order_id for i in range(EARLIER_ORDERS)]
            await wait_until(lambda: len(sim.status()["open_orders"]) == EARLIER_ORDERS, "the earlier orders")
            for i in range(EARLIER_ORDERS):
                await b.api.cancel_order(CancelOrder(client_order_id=f"early-{i}"))
            await wait_until(lambda: not sim.status()["open_orders"], "the earlier orders cancelled")
            return ids

    return run(go(), timeout=120)


def test_a_restarted_bridge_never_reuses_an_order_id_after_a_rolled_back_next_valid_id(
    sim: GatewaySim,
) -> None:
    settings = bridge_settings(sim.port)
    used = earlier_bridge_places_and_cancels(sim, settings)
    sim.next_id_rollback(min(used))  # the restarted Gateway announces an id the first bridge already used

    async def go() -> tuple[int, float]:
        async with live_bridge(settings) as b:  # a new bridge process: empty registry, same data directory
            await b.wait_state("READY")
            ack = await b.api.place_order(resting("after-restart"))
            await wait_until(lambda: working_at_sim(sim, "after-restart"), "the new order working")
            return ack.order_id, b.session.counters.get("code_103", 0)

    order_id, duplicates = run(go(), timeout=120)
    assert order_id > max(used) and duplicates == 0
    assert [o["order_id"] for o in working_at_sim(sim, "after-restart")] == [order_id]


def test_an_order_refused_as_a_duplicate_id_is_placed_again_once_under_a_fresh_id(sim: GatewaySim) -> None:
    settings = bridge_settings(sim.port)
    used = earlier_bridge_places_and_cancels(sim, settings)
    (settings.data_dir / FILE_NAME).unlink()  # the order-id file is lost (a new machine, a wiped disk)
    sim.next_id_rollback(min(used))

    async def go() -> tuple[int, float, list[dict[str, Any]], list[OrderEvent], str]:
        async with live_bridge(settings) as b:
            await b.wait_state("READY")
            ack = await b.api.place_order(resting("refused-once"))
            await wait_until(lambda: working_at_sim(sim, "refused-once"), "the order working after all")
            working = working_at_sim(sim, "refused-once")
            cancel = await b.api.cancel_order(CancelOrder(client_order_id="refused-once"))
            await wait_until(lambda: not working_at_sim(sim, "refused-once"), "cancelled through the bridge")
            await wait_until(
                lambda: any(e.status == "CANCELLED" for e in events_of(b, "refused-once")), "CANCELLED"
            )
            return (
                ack.order_id,
                b.session.counters.get("code_103", 0),
                working,
                events_of(b, "refused-once"),
                (cancel.status),
            )

    first_id, duplicates, working, every, cancel_status = run(go(), timeout=120)
    assert first_id in used and duplicates == 1  # the scenario happened: the first id was a used one
    assert len(working) == 1 and working[0]["order_id"] > max(used)  # one order at the Gateway, fresh id
    placements = [o["placements"] for o in sim.audit()["orders"] if o["orderRef"] == "refused-once"]
    assert placements == [1]  # the Gateway accepted that client order id exactly once
    assert not [e for e in every if e.error_code == 103 or e.status == "REJECTED"]  # never shown as dead
    assert cancel_status == "PENDING_CANCEL" and every[-1].order_id == working[0]["order_id"]
