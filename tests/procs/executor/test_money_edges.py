"""Money edges (issue 14, item 8) in the executor core over a real ledger file: a fill belongs to the trading day
it executed on, an unset commission is unknown until IB reports it, fractional positions are reduced and flattened
by IB's fractional rules, and ledger and broker are compared as exact decimals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from procs.executor.actions import Send
from procs.executor.commands import status_view
from procs.executor.engine import Executor
from procs.executor.hours import NEW_YORK
from procs.executor.reconcile import diff_positions
from procs.executor.risk import OrderIntent, check_quantity
from procs.executor.sizing import fractional_step
from shared.messages import Fill, Position, TargetPosition

from .conftest import WallClock

D = Decimal


def ny_ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=NEW_YORK).timestamp() * 1e9)


def target(weight: float, symbol: str = "AAPL") -> TargetPosition:
    return TargetPosition(symbol=symbol, weight=weight, reason="test", strategy="t", feature_end_ns=0)


def sent(actions: list) -> list[Send]:  # type: ignore[type-arg]
    return [a for a in actions if isinstance(a, Send)]


def fill_of(ex: Executor, send: Send, exec_id: str, exec_ns: int, commission: str | None) -> Fill:
    o = send.order
    return Fill(
        exec_id=exec_id,
        client_order_id=o.client_order_id,
        symbol=o.symbol,
        side=o.side,
        quantity=o.quantity,
        price=D("100.05"),
        commission=None if commission is None else D(commission),
        exec_ns=exec_ns,
    )


def test_a_fill_executed_before_midnight_and_booked_after_is_the_previous_days(
    make_executor: Callable[..., Executor],
) -> None:
    clock = WallClock(ny_ns("2026-11-18T23:59:40"))
    ex = make_executor(wall=clock, position_notional="10000")
    (buy,) = sent(ex.on_target(target(1.0)))  # 99 AAPL at ~100
    clock.now = ny_ns("2026-11-19T00:00:10")  # the executor's new day is open before the fill arrives
    assert ex.view.day_record().trading_day == "2026-11-19" and ex.view.daily_pnl() == 0
    ex.on_fill(fill_of(ex, buy, "e1", ny_ns("2026-11-18T23:59:50"), None))
    (row,) = ex.view.fills()
    assert row["trading_day"] == "2026-11-18" and row["commission"] is None
    today = ex.view.day("2026-11-19")
    assert today is not None and today.realized == 0 and today.commissions == 0
    assert today.start["AAPL"][0] == buy.order.quantity  # today starts holding what yesterday bought
    assert ex.view.daily_pnl() == 0  # bought yesterday at 100.05: today's P&L moves only with today's prices
    view = status_view(ex.view, "READY", {})
    assert view["commissions_unknown"].startswith("1 fill(s) without IB's commission")
    # IB's commission report comes now: yesterday's commission, not today's, and no longer unknown
    ex.on_fill(fill_of(ex, buy, "e1", ny_ns("2026-11-18T23:59:50"), "1.25"))
    assert ex.view.day("2026-11-18").commissions == D("1.25")  # type: ignore[union-attr]
    assert ex.view.day("2026-11-19").commissions == 0  # type: ignore[union-attr]
    assert ex.view.daily_pnl() == 0 and ex.view.unknown_commissions() == 0
    assert status_view(ex.view, "READY", {})["commissions_unknown"] == ""


def test_an_unset_commission_is_never_booked_as_zero_and_is_asked_for_again(
    make_executor: Callable[..., Executor],
) -> None:
    clock = WallClock(ny_ns("2026-11-18T11:00:00"))
    ex = make_executor(wall=clock)
    (buy,) = sent(ex.on_target(target(0.5)))
    exec_ns = ny_ns("2026-11-18T10:59:59")
    ex.on_fill(fill_of(ex, buy, "e1", exec_ns, None))
    assert ex.view.booked_fills(["e1"]) == {"e1": False}  # booked, its commission not
    assert ex.view.oldest_unknown_commission_ns() == exec_ns  # reconciliation asks from here, however old
    assert ex.view.day("2026-11-18").commissions == 0  # type: ignore[union-attr]
    ex.on_fill(fill_of(ex, buy, "e1", exec_ns, "0.35"))
    ex.on_fill(fill_of(ex, buy, "e1", exec_ns, "0.35"))  # a repeat books nothing more
    assert ex.view.day("2026-11-18").commissions == D("0.35")  # type: ignore[union-attr]
    assert ex.view.oldest_unknown_commission_ns() == 0


def fractional_position(ex: Executor, quantity: str) -> None:
    """The broker's fractional AAPL (a dividend reinvestment) accepted into the ledger."""
    ex.accept_broker(
        "AAPL", D(quantity), D("100"), method="test", operator="tester", reason="dividend reinvestment"
    )
    ex.on_position(Position(symbol="AAPL", quantity=D(quantity)))


def test_a_fractional_position_is_flattened_in_one_fractional_reduce_only_order(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    fractional_position(ex, "10.5")
    (close,) = sent(ex.flatten(["AAPL"]))
    assert (close.order.side, close.order.quantity, close.order.reduce_only) == ("SELL", D("10.5"), True)


def test_a_fractional_position_is_reduced_to_whole_targets_and_new_risk_stays_whole(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor(position_notional="1000")  # weight 0.5 -> 5 shares at ~100
    fractional_position(ex, "10.5")
    (down,) = sent(ex.on_target(target(0.5)))
    assert (down.order.side, down.order.quantity) == ("SELL", D("5.5"))  # lands on 5 whole shares

    ex2 = make_executor(position_notional="2000")  # weight 1 -> 20 shares at 100
    fractional_position(ex2, "10.5")
    (up,) = sent(ex2.on_target(target(1.0)))
    assert (up.order.side, up.order.quantity) == ("BUY", D("9"))  # 9.5 to go: new risk in whole shares

    ex3 = make_executor(position_notional="1000")
    fractional_position(ex3, "10.5")
    (cross,) = sent(ex3.on_target(target(-0.5)))
    assert (cross.order.side, cross.order.quantity) == ("SELL", D("10.5"))  # to zero first, never short 4.5


def test_a_fraction_passes_the_quantity_check_only_when_it_closes_a_fraction(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    fractional_position(ex, "10.5")
    ctx = ex.risk_context("AAPL")
    lim = ex.view.limits

    def verdict(side: str, qty: str, reduce: bool) -> str:
        order = OrderIntent("AAPL", side, D(qty), "LMT", D("100"), reduce)  # type: ignore[arg-type]
        rejection = check_quantity(order, ctx, lim)
        return "" if rejection is None else rejection.rule

    assert verdict("SELL", "10.5", True) == "" and verdict("SELL", "0.5", True) == ""
    assert verdict("SELL", "0.25", True) == "quantity"  # leaves 10.25: still a fraction
    assert verdict("BUY", "0.5", False) == "quantity"  # new fractional risk
    assert verdict("SELL", "2", True) == ""  # whole shares are always whole
    whole = make_executor()
    assert check_quantity(OrderIntent("AAPL", "BUY", D("0.5"), "LMT", D("100")), whole.risk_context("AAPL"),
                          whole.view.limits) is not None  # fmt: skip


def test_fractional_step_rules() -> None:
    assert fractional_step(D("-5.5"), D("10.5")) == D("5.5")
    assert fractional_step(D("8.5"), D("10.5")) == D("8")
    assert fractional_step(D("-15.5"), D("10.5")) == D("10.5")
    assert fractional_step(D("0.5"), D("0")) == D("0")
    assert fractional_step(D("-3"), D("10")) == D("3")


def test_ledger_and_broker_are_compared_as_exact_decimals() -> None:
    ledger = {"AAPL": D("0.1") + D("0.2"), "MSFT": D("10.5")}
    assert diff_positions(ledger, {"AAPL": D("0.3"), "MSFT": D("10.50")}, D(0)) == []
    (m,) = diff_positions(ledger, {"AAPL": D("0.3"), "MSFT": D("10.500001")}, D(0))
    assert (m.symbol, m.ledger, m.broker) == ("MSFT", D("10.5"), D("10.500001"))
