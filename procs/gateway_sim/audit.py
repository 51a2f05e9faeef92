"""The simulator's audit (`audit`): every order it ever received, every execution (a corrected one with the execId
that replaced it), positions by contract, cash, how many new orders carried each orderRef, and the largest position
each stock ever reached -- the broker's side of the truth a chaos run checks the stack against.

It records what arrived and reads the broker; it must never change an order or the books. Decimals are strings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procs.gateway_sim.broker import SimBroker
    from procs.gateway_sim.orders import SimExecution


@dataclass(slots=True)
class ReceivedOrder:
    """An order as its first placeOrder brought it, with what the account held in that stock at that moment."""

    order_id: int
    client_id: int
    order_ref: str
    symbol: str
    action: str
    quantity: Decimal
    order_type: str
    lmt_price: Decimal | None
    received_ns: int  # the simulator's wall clock (time.time_ns()) when it arrived
    position_before: Decimal
    refused: bool = False  # rejected before it ever worked (321, 200, 201, ...)


def text(d: Decimal) -> str:
    """A Decimal as plain digits (never 1E+2)."""
    return format(d, "f")


class OrderAudit:
    def __init__(self) -> None:
        self._orders: dict[int, ReceivedOrder] = {}
        # placeOrder messages with a new orderId, per orderRef: more than one means a client order was sent twice
        self._placements: Counter[str] = Counter()

    def received(self, order: ReceivedOrder) -> bool:
        """Record the first placeOrder of an order id (True); a later one (a modify, a 103) changes nothing."""
        if order.order_id in self._orders:
            return False
        self._orders[order.order_id] = order
        if order.order_ref:
            self._placements[order.order_ref] += 1
        return True

    def rejected(self, order_id: int, code: int) -> None:
        record = self._orders.get(order_id)
        if record is not None:
            record.refused = True

    def report(self, broker: SimBroker) -> dict[str, Any]:
        return {
            "orders": [self._order(r, broker) for r in self._orders.values()],
            "executions": [_execution(e, None) for e in broker.executions()]
            + [_execution(e, by) for e, by in broker.replaced_executions()],
            "positions": [
                {
                    "symbol": p.symbol,
                    "secType": p.contract.sec_type if p.contract else "STK",
                    "conId": p.con_id,
                    "quantity": text(p.position),
                    "avgCost": text(p.avg_cost),
                }
                for p in broker.positions()
            ],
            "cash": text(broker.books.cash),
            "max_abs_position": {sym: text(q) for sym, q in broker.max_abs_position.items()},
        }

    def _order(self, r: ReceivedOrder, broker: SimBroker) -> dict[str, Any]:
        o = broker.order(r.order_id)
        if o is not None and o.client_id != r.client_id:
            o = None  # the broker's order of that id belongs to another client: this one never worked
        lmt = o.lmt_price if o is not None else r.lmt_price
        return {
            "orderId": r.order_id,
            "permId": o.perm_id if o else 0,
            "clientId": r.client_id,
            "orderRef": o.order_ref if o else r.order_ref,
            "symbol": r.symbol,
            "action": r.action,
            "quantity": text(o.total_qty if o else r.quantity),
            "orderType": o.order_type if o else r.order_type,
            "lmtPrice": None if lmt is None else text(lmt),
            "status": o.status if o else ("Rejected" if r.refused else "Received"),
            "filled": text(o.filled) if o else "0",
            "placements": self._placements[r.order_ref] if r.order_ref else 1,
            "received_ns": r.received_ns,
            "position_before": text(r.position_before),
        }


def _execution(e: SimExecution, replaced_by: str | None) -> dict[str, Any]:
    return {
        "execId": e.exec_id,
        "orderId": e.order_id,
        "orderRef": e.order_ref,
        "symbol": e.symbol,
        "side": e.side,
        "quantity": text(e.shares),
        "price": text(e.price),
        "replaced_by": replaced_by,
    }
