"""Orders go to the Gateway under ids that never repeat, and an order the Gateway refused as a duplicate id (103)
goes out once more under a fresh one.

Part of the ib_async adapter (procs/bridge/ib), over ib_async's placeOrder and its id sequence. It must never
send an id the order-id file does not cover, and never send one order twice: a 103 means the Gateway did not
accept it, so exactly one re-place follows, never a second.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ib_async import IB, Order, Trade

from procs.bridge.order_ids import OrderIdStore, next_order_id
from procs.bridge.orders import OrderRegistry
from shared.log import event

# After a 103 the Gateway remembers ids we cannot see (completed orders carry no order id, a restarted Gateway may
# roll nextValidId back), so the next id after the refused one may be taken too: the one re-place jumps well
# past it. Ids are plentiful (2^31).
REPLACE_JUMP = 1000


class Placer:
    """`place(contract, order)` sends a new order under a fresh id; `on_duplicate_id` handles a 103."""

    def __init__(
        self, ib: IB, orders: OrderRegistry, ids: OrderIdStore, generation: Callable[[], int]
    ) -> None:
        self.ib = ib
        self.orders = orders
        self.ids = ids
        self._generation = generation
        self.replaced = 0

    def start_above(self, next_valid_id: int = 0) -> None:
        """After a (re)connect or a sync: ib_async's next id goes above nextValidId (already applied by ib_async),
        every order id the Gateway showed or this process used, and every id an earlier bridge process on this
        data directory may have used. The file is brought up to it now, so the first order does not wait for
        the disk."""
        first = next_order_id(next_valid_id, self.orders.highest_order_id, self.ids.at_start)
        self.ib.client.updateReqId(first)  # type: ignore[no-untyped-call]
        try:
            self.ids.reserve(first)
        except OSError as exc:  # each placement tries again, and refuses to send while it fails
            event("order_ids_unwritable", "ERROR", path=str(self.ids.path), error=repr(exc))

    def _fresh_id(self, at_least: int = 0) -> int:
        client = self.ib.client
        client.updateReqId(at_least)  # type: ignore[no-untyped-call]
        order_id: int = client.getReqId()
        self.ids.reserve(order_id)  # OSError: the id is not covered on disk, so it is not sent
        return order_id

    def place(self, contract: Any, order: Order) -> Trade:
        """Send a new order (ConnectionError when the socket is gone, OSError when its id cannot be recorded)."""
        order.orderId = self._fresh_id()
        return self.ib.placeOrder(contract, order)

    def live_trade(self, client_order_id: str, order_id: int) -> Trade | None:
        """The ib_async trade of an order: the one under its current order id (a copy refused with 103 and
        placed again is not it), else the last the Gateway showed under that orderRef."""
        found = None
        for t in self.ib.trades():
            if t.order.orderRef != client_order_id or t.order.orderId in self.orders.replaced:
                continue
            if order_id and t.order.orderId == order_id:
                return t
            found = t
        return found

    def on_duplicate_id(self, order_id: int) -> None:
        """The Gateway answered 103 "Duplicate order id" to `order_id`: re-place that order once, same orderRef,
        under an id far above it (called before ib_async marks the refused copy Cancelled)."""
        record = self.orders.replace_after_duplicate(order_id)
        w = self.ib.wrapper
        trade = w.trades.get((w.clientId, order_id))
        if record is None or trade is None or trade.order.orderRef != record.client_order_id:
            return
        try:
            new_id = self._fresh_id(order_id + REPLACE_JUMP)
            again = dataclasses.replace(trade.order, orderId=new_id, permId=0)
            self.ib.placeOrder(trade.contract, again)
        except (OSError, ConnectionError) as exc:
            event(
                "order_replace_failed",
                "ERROR",
                client_order_id=record.client_order_id,
                order_id=order_id,
                error=repr(exc),
            )
            return
        self.orders.replaced_by(order_id, record.client_order_id, new_id, self._generation())
        self.replaced += 1
        event(
            "order_replaced",
            "WARNING",
            client_order_id=record.client_order_id,
            refused_order_id=order_id,
            order_id=new_id,
            why="103 Duplicate order id: the Gateway did not accept it",
        )
