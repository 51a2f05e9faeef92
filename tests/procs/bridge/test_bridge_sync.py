"""After a sync the order registry learns what the Gateway holds, from the adapter's views (OrderEvents, Fills):
pure, no socket. An order sent in an earlier session that the Gateway never showed is lost (safe to retry), but
only after a complete sync."""

from __future__ import annotations

from decimal import Decimal

from procs.bridge.orders import OrderRegistry
from procs.bridge.sync import reconcile_orders
from shared.messages import Fill, OrderEvent, PlaceOrder


def sent(orders: OrderRegistry, cid: str, order_id: int, generation: int) -> None:
    orders.claim(PlaceOrder(client_order_id=cid, symbol="AAPL", side="BUY", quantity=Decimal(1)))
    orders.sent(cid, order_id, generation)


def working(cid: str, order_id: int) -> OrderEvent:
    return OrderEvent(
        client_order_id=cid, order_id=order_id, perm_id=order_id + 1000, symbol="AAPL", status="SUBMITTED"
    )


def filled(cid: str, order_id: int) -> Fill:
    return Fill(
        exec_id=f"e{order_id}",
        client_order_id=cid,
        order_id=order_id,
        symbol="AAPL",
        side="BUY",
        quantity=Decimal(1),
        price=Decimal(100),
    )


def test_orders_and_fills_at_the_gateway_are_known_and_the_missing_one_is_lost() -> None:
    orders = OrderRegistry()
    for cid, oid in (("working", 11), ("done", 12), ("gone", 13)):
        sent(orders, cid, oid, generation=1)
    lost = reconcile_orders(
        [working("working", 11), working("", 40)], [filled("done", 12)], orders, 2, complete=True
    )
    assert [r.client_order_id for r in lost] == ["gone"]
    assert orders.get("gone") is None and orders.get("working") is not None and orders.get("done") is not None
    assert orders.highest_order_id >= 40  # another client's order id is never issued again
    rec = orders.get("working")
    assert rec is not None and rec.acknowledged and rec.perm_id == 1011


def test_an_incomplete_sync_loses_nothing() -> None:
    orders = OrderRegistry()
    sent(orders, "maybe", 21, generation=1)
    assert reconcile_orders([], [], orders, 2, complete=False) == []
    assert orders.get("maybe") is not None


def test_an_order_of_this_session_is_not_lost_before_the_gateway_answers() -> None:
    orders = OrderRegistry()
    sent(orders, "just-sent", 31, generation=2)
    assert reconcile_orders([], [], orders, 2, complete=True) == []
