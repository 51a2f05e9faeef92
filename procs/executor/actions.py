"""What the executor's core asks its adapter to do: send an order, cancel one, publish a message, reconcile.

Plain frozen values; the core returns them, the adapter (app.py) carries them out. Nothing here does anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from procs.executor.orders import OrderRecord
from shared.messages import Message, OrderEvent


@dataclass(frozen=True, slots=True)
class Send:
    order: OrderRecord


@dataclass(frozen=True, slots=True)
class Cancel:
    client_order_id: str


@dataclass(frozen=True, slots=True)
class Modify:
    """IB's modify of a working order (a protective stop following its position): its new total quantity."""

    client_order_id: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    msg: Message


@dataclass(frozen=True, slots=True)
class Reconcile:
    reason: str


Action = Send | Cancel | Modify | Publish | Reconcile


def order_event(o: OrderRecord) -> OrderEvent:
    """The executor's own view of an order, as published on `order.<status>`."""
    return OrderEvent(
        client_order_id=o.client_order_id,
        order_id=o.broker_order_id,
        perm_id=o.perm_id,
        symbol=o.symbol,
        side=o.side,
        quantity=o.quantity,
        order_type=o.order_type,
        limit_price=o.limit_price,
        status=o.status,
        filled=o.filled,
        remaining=max(Decimal(0), o.quantity - o.filled),
        avg_fill_price=o.avg_fill_price,
        reason=o.reason,
        error_code=o.error_code,
    )
