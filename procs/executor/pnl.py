"""Profit and loss from the ledger's exact cash and positions, marked at the last quotes (pure).

Daily P&L is the change in equity since the day began: (cash now - cash at the start) + (positions at today's
marks) - (the day's opening positions at their reference prices). It counts realized and unrealized P&L and
commissions, and needs no cost-basis bookkeeping to stay exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

ZERO = Decimal(0)


def mark_of(symbol: str, marks: Mapping[str, Decimal], fallback: Decimal) -> Decimal:
    """The price a position is valued at: the last quote, else `fallback` (its cost or reference)."""
    price = marks.get(symbol)
    return price if price is not None and price > 0 else fallback


def daily_pnl(
    cash_now: Decimal,
    start_cash: Decimal,
    positions: Mapping[str, tuple[Decimal, Decimal]],  # symbol -> (shares, average cost)
    start: Mapping[str, tuple[Decimal, Decimal | None]],  # symbol -> (shares at the day's start, reference)
    marks: Mapping[str, Decimal],
) -> Decimal:
    """Today's P&L; a position with no quote yet is valued at its reference (or cost), contributing nothing."""
    value_now = ZERO
    for symbol, (shares, cost) in positions.items():
        ref = start.get(symbol, (ZERO, None))[1]
        value_now += shares * mark_of(symbol, marks, ref if ref is not None else cost)
    value_start = ZERO
    for symbol, (shares, ref) in start.items():
        cost = positions.get(symbol, (ZERO, ZERO))[1]
        value_start += shares * (ref if ref is not None else mark_of(symbol, marks, cost))
    return cash_now - start_cash + value_now - value_start


def unrealized(positions: Mapping[str, tuple[Decimal, Decimal]], marks: Mapping[str, Decimal]) -> Decimal:
    """Open P&L against average cost, at the last quotes."""
    return sum(
        (shares * (mark_of(s, marks, cost) - cost) for s, (shares, cost) in positions.items()),
        start=ZERO,
    )


def gross_exposure(positions: Mapping[str, tuple[Decimal, Decimal]], marks: Mapping[str, Decimal]) -> Decimal:
    """Sum of absolute position values at the last quotes."""
    return sum(
        (abs(shares) * mark_of(s, marks, cost) for s, (shares, cost) in positions.items()),
        start=ZERO,
    )
