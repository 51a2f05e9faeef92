"""IB's execution corrections: a later execution whose execId equals the corrected one up to its last '.', with the
next suffix (`....01.01` -> `....01.02`), replaces it; the order's fill and the account's books follow.

Pure: executions and an order in, the correcting execution and rebuilt books out. It must never keep the corrected
execution in the books: only executions in force are booked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal

from procs.gateway_sim.account import SimAccount, ratio
from procs.gateway_sim.orders import SimExecution, SimOrder


def next_exec_id(exec_id: str) -> str:
    """`0000e0d5.6578a0b1.01.01` -> `0000e0d5.6578a0b1.01.02`."""
    base, _, suffix = exec_id.rpartition(".")
    return f"{base}.{int(suffix) + 1:02d}"


def correct(
    order: SimOrder,
    old: SimExecution,
    quantity: Decimal,
    price: Decimal,
    commission_of: Callable[[SimOrder], Decimal],
    last_of_order: bool,
) -> SimExecution:
    """Move `order`'s fill from `old` to the corrected values and return the correcting execution.

    ValueError (one line) when the correction is impossible; the order is unchanged then."""
    if quantity <= 0 or price <= 0:
        raise ValueError("correct-execution: PRICE and QUANTITY must be positive")
    if order.filled - old.shares + quantity > order.total_qty:
        raise ValueError(
            f"correct-execution: {quantity} shares would fill order {order.order_id} beyond its {order.total_qty}"
        )
    order.filled += quantity - old.shares
    order.filled_value += quantity * price - old.shares * old.price
    order.avg_fill_price = ratio(order.filled_value, order.filled)
    if last_of_order:
        order.last_fill_price = price
    total = commission_of(order)
    commission, order.commission = old.commission + total - order.commission, total
    if order.remaining == 0 and order.is_working:
        order.status = "Filled"
    return dataclasses.replace(
        old,
        exec_id=next_exec_id(old.exec_id),
        shares=quantity,
        price=price,
        cum_qty=order.filled,
        avg_price=order.avg_fill_price,
        commission=commission,
    )


def rebook(books: SimAccount, executions: list[SimExecution]) -> tuple[SimAccount, list[SimExecution]]:
    """`books` (the opening ones, a fresh copy: they are booked into) after the executions in force, in order; each
    execution's realized P&L as these books make it (a correction of an earlier fill changes what later ones
    realize)."""
    out = []
    for e in executions:
        realized = books.book_fill(e.symbol, e.con_id, e.side == "BOT", e.shares, e.price, e.commission)
        out.append(e if realized == e.realized_pnl else dataclasses.replace(e, realized_pnl=realized))
    return books, out
