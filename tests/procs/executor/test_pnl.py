"""Daily P&L is the change in equity since the day began: realized, unrealized and commissions, exactly."""

from __future__ import annotations

from decimal import Decimal

from procs.executor.pnl import daily_pnl, gross_exposure, unrealized

D = Decimal


def test_a_round_trip_today_is_its_realized_pnl_less_commissions() -> None:
    # bought 100 @ 100.00 and sold 100 @ 100.50, 2.00 commissions: cash flow +48.00
    assert daily_pnl(D(48), D(0), {"AAPL": (D(0), D(0))}, {}, {"AAPL": D(101)}) == D(48)


def test_an_open_position_bought_today_counts_its_mark() -> None:
    cash = D(-10_001)  # 100 @ 100.00 + 1.00 commission
    assert daily_pnl(cash, D(0), {"AAPL": (D(100), D(100))}, {}, {"AAPL": D("99.50")}) == D(-51)


def test_a_position_carried_in_counts_only_todays_move() -> None:
    start = {"AAPL": (D(100), D(150))}  # held overnight, first price today 150
    assert daily_pnl(D(-10_000), D(-10_000), {"AAPL": (D(100), D(100))}, start, {"AAPL": D(149)}) == D(-100)
    # no reference and no quote yet: contributes nothing
    start_unknown = {"AAPL": (D(100), None)}
    assert daily_pnl(D(0), D(0), {"AAPL": (D(100), D(100))}, start_unknown, {}) == D(0)


def test_prices_in_tenths_of_cents_stay_exact() -> None:
    positions = {"A": (D(3), D("0.1")), "B": (D(-3), D("0.2"))}
    marks = {"A": D("0.3"), "B": D("0.1")}
    assert unrealized(positions, marks) == D("0.9")  # 3*0.2 + (-3)*(-0.1)
    assert gross_exposure(positions, marks) == D("1.2")
