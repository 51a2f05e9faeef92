"""After every startup sync, the order registry is refilled from what the Gateway holds, and the orders sent in an
earlier session that never reached it are found (safe to retry).

Pure: the adapter's views of the Gateway's orders and fills in, the registry taught. It must never call an order
lost after an incomplete sync (a part that timed out may still hold it).
"""

from __future__ import annotations

from procs.bridge.orders import OrderRecord, OrderRegistry
from shared.messages import Fill, OrderEvent


def reconcile_orders(
    at_broker: list[OrderEvent],
    fills: list[Fill],
    orders: OrderRegistry,
    generation: int,
    *,
    complete: bool,
) -> list[OrderRecord]:
    """Teach the registry every order the Gateway holds (by orderRef) and every order id it showed; after a
    complete sync, return the orders we sent in an earlier session that never reached the Gateway (now safe to
    retry)."""
    at_gateway: set[str] = set()
    for ev in at_broker:
        orders.seen(ev.client_order_id, ev.symbol, ev.order_id, ev.perm_id, ev.status)
        if ev.client_order_id:
            at_gateway.add(ev.client_order_id)
    for fill in fills:
        orders.note_order_id(fill.order_id)  # completed orders carry no order id; fills do
        if fill.client_order_id:
            at_gateway.add(fill.client_order_id)
    if not complete:
        return []
    return orders.forget_unacknowledged(at_gateway, generation)
