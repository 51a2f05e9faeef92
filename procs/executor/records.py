"""The ledger's plain records and how an order maps to and from its row; pure, no database access here.

Quantities and money are Decimal in every record and TEXT in every row; book_fill is the one place a position's
average cost and realized P&L are computed.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from procs.executor.orders import OrderRecord

ORDER_COLUMNS = (
    "client_order_id, symbol, side, quantity, order_type, limit_price, status, filled, reported_filled, "
    "avg_fill_price, broker_order_id, perm_id, reason, error_code, reduce_only, created_ns, updated_ns, sent_ns, "
    "decided_on_ns, why, unconfirmed, decision_quote"
)
ORDER_INSERT = f"INSERT INTO orders ({ORDER_COLUMNS}, settled) VALUES ({','.join('?' * 23)})"
# what changes over an order's life; the rest is fixed when it is written, before it is sent
ORDER_MUTABLE = (
    "status", "filled", "reported_filled", "avg_fill_price", "broker_order_id", "perm_id", "reason",
    "error_code", "updated_ns", "sent_ns", "settled", "unconfirmed", "quantity",
)  # fmt: skip
ORDER_UPDATE = f"UPDATE orders SET {', '.join(c + '=?' for c in ORDER_MUTABLE)} WHERE client_order_id=?"
AVG_PLACES = Decimal("1e-8")


@dataclass(frozen=True, slots=True)
class FillIn:
    """A fill as the executor books it (from the bridge, reconciliation or local paper trading)."""

    exec_id: str
    client_order_id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: Decimal
    price: Decimal
    commission: Decimal | None
    exec_ns: int


@dataclass(slots=True)
class PositionRecord:
    symbol: str
    quantity: Decimal = Decimal(0)
    avg_cost: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)  # lifetime, average-cost method


@dataclass(frozen=True, slots=True)
class HaltState:
    halted: bool
    reason: str = ""
    since_ns: int = 0
    source: str = ""  # operator, daily_loss, reconcile, flatten


@dataclass(frozen=True, slots=True)
class DayRecord:
    trading_day: str
    start_cash: Decimal
    realized: Decimal
    commissions: Decimal
    start: dict[str, tuple[Decimal, Decimal | None]]  # symbol -> (shares at the day's start, reference price)


def book_fill(
    quantity: Decimal, avg_cost: Decimal, signed_fill: Decimal, price: Decimal
) -> tuple[Decimal, Decimal, Decimal]:
    """A position after a fill: (new quantity, new average cost, realized P&L of the shares it closed)."""
    new_qty = quantity + signed_fill
    if quantity == 0 or (quantity > 0) == (signed_fill > 0):
        total_cost = abs(quantity) * avg_cost + abs(signed_fill) * price
        return new_qty, (total_cost / abs(new_qty)).quantize(AVG_PLACES), Decimal(0)
    closed = min(abs(signed_fill), abs(quantity))
    realized = closed * (price - avg_cost) * (1 if quantity > 0 else -1)
    if new_qty == 0:
        return new_qty, Decimal(0), realized
    if (new_qty > 0) != (quantity > 0):  # flipped through zero: the rest opens at the fill price
        return new_qty, price, realized
    return new_qty, avg_cost, realized


def correction_base(exec_id: str) -> str | None:
    """IB's execution id up to its last '.', when what follows is a version number (a correction raises it)."""
    base, dot, suffix = exec_id.rpartition(".")
    return base if dot and base and suffix.isdigit() else None


def correction_rank(exec_id: str) -> int:
    """The version of an execution: 1 for `...01`, 2 for its correction `...02`."""
    return int(exec_id.rpartition(".")[2])


def dec_or_none(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def order_from_row(row: sqlite3.Row) -> OrderRecord:
    return OrderRecord(
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        side=row["side"],
        quantity=Decimal(row["quantity"]),
        order_type=row["order_type"],
        limit_price=dec_or_none(row["limit_price"]),
        status=row["status"],
        filled=Decimal(row["filled"]),
        reported_filled=Decimal(row["reported_filled"]),
        avg_fill_price=Decimal(row["avg_fill_price"]),
        broker_order_id=row["broker_order_id"],
        perm_id=row["perm_id"],
        reason=row["reason"],
        error_code=row["error_code"],
        reduce_only=bool(row["reduce_only"]),
        created_ns=row["created_ns"],
        updated_ns=row["updated_ns"],
        sent_ns=row["sent_ns"],
        decided_on_ns=row["decided_on_ns"],
        why=row["why"],
        unconfirmed=row["unconfirmed"],
        decision_quote=dec_or_none(row["decision_quote"]),
    )


def order_row(o: OrderRecord) -> dict[str, Any]:
    """Every orders column with its stored value; the one mapping both INSERT and UPDATE are built from."""
    return {
        "client_order_id": o.client_order_id,
        "symbol": o.symbol,
        "side": o.side,
        "quantity": str(o.quantity),
        "order_type": o.order_type,
        "limit_price": None if o.limit_price is None else str(o.limit_price),
        "status": o.status,
        "filled": str(o.filled),
        "reported_filled": str(o.reported_filled),
        "avg_fill_price": str(o.avg_fill_price),
        "broker_order_id": o.broker_order_id,
        "perm_id": o.perm_id,
        "reason": o.reason,
        "error_code": o.error_code,
        "reduce_only": int(o.reduce_only),
        "created_ns": o.created_ns,
        "updated_ns": o.updated_ns,
        "sent_ns": o.sent_ns,
        "decided_on_ns": o.decided_on_ns,
        "why": o.why,
        "unconfirmed": o.unconfirmed,
        "decision_quote": None if o.decision_quote is None else str(o.decision_quote),
        "settled": int(settled(o)),
    }


def settled(o: OrderRecord) -> bool:
    """Done and fully booked: nothing more can change the position through this order."""
    return not o.working and o.pending() == 0
