"""Sizing: weights become whole shares that never exceed the notional; limit prices are whole ticks in the collar."""

from __future__ import annotations

from decimal import Decimal

import pytest

from procs.executor.sizing import (
    QuoteSnapshot,
    collar_distance_bps,
    marketable_limit,
    order_delta,
    round_to_tick,
    target_shares,
    to_decimal,
)

D = Decimal


def test_target_shares_rounds_toward_zero_both_ways() -> None:
    assert target_shares(0.5, D(10_000), D("187.25")) == D(26)  # 26.70 -> 26
    assert target_shares(-0.5, D(10_000), D("187.25")) == D(-26)
    assert target_shares(0.01, D(10_000), D(200)) == D(0)
    assert str(target_shares(-0.001, D(10_000), D(200))) == "0"  # no "-0"
    assert target_shares(1.0, D(10_000), D(100)) * D(100) <= D(10_000)


def test_target_shares_refuses_a_non_positive_price() -> None:
    with pytest.raises(ValueError):
        target_shares(0.5, D(10_000), D(0))


def test_floats_from_the_wire_become_the_decimal_a_human_reads() -> None:
    assert to_decimal(187.25) == D("187.25")
    assert to_decimal(0.1 + 0.2) == D("0.30000000000000004")  # exact, not silently "fixed"
    with pytest.raises(ValueError):
        to_decimal(float("nan"))


def test_round_to_tick_goes_the_asked_way_and_keeps_the_tick_exponent() -> None:
    assert round_to_tick(D("100.017"), D("0.01"), "down") == D("100.01")
    assert round_to_tick(D("100.011"), D("0.01"), "up") == D("100.02")
    assert str(round_to_tick(D("100"), D("0.01"), "up")) == "100.00"
    assert round_to_tick(D("10.03"), D("0.05"), "down") == D("10.00")
    assert round_to_tick(D("10.03"), D("0.05"), "up") == D("10.05")


def test_marketable_limit_crosses_the_touch_and_stays_in_the_collar() -> None:
    q = QuoteSnapshot(D("99.99"), D("100.01"), D(100))
    buy = marketable_limit("BUY", q, D(50), D("0.01"))
    sell = marketable_limit("SELL", q, D(50), D("0.01"))
    assert buy >= q.ask and sell <= q.bid
    assert collar_distance_bps(buy, q.reference) <= 50
    assert collar_distance_bps(sell, q.reference) <= 50
    assert buy == D("100.26") and sell == D("99.75")  # touch -/+ 25 bps, rounded toward the quote


def test_marketable_limit_never_lands_on_the_wrong_side_of_the_touch() -> None:
    q = QuoteSnapshot(D("9.99"), D("10.01"), D(10))
    assert marketable_limit("BUY", q, D("0.1"), D("0.05")) >= q.ask
    assert marketable_limit("SELL", q, D("0.1"), D("0.05")) <= q.bid


def test_without_a_bid_and_ask_the_last_trade_is_the_reference() -> None:
    q = QuoteSnapshot(D(0), D(0), D(50))
    assert q.reference == D(50) and q.touch("BUY") == D(50)


def test_order_delta_counts_working_orders() -> None:
    assert order_delta(D(100), D(0), D(0)) == D(100)
    assert order_delta(D(100), D(40), D(60)) == D(0)
    assert order_delta(D(0), D(100), D(-30)) == D(-70)


def test_small_top_ups_of_a_held_target_are_not_worth_an_order() -> None:
    from procs.executor.sizing import worth_trading

    assert not worth_trading(D(312), D(311))  # the same target re-sized at a new price
    assert not worth_trading(D(100), D(100))
    assert worth_trading(D(100), D(90))  # beyond the 5% band
    assert worth_trading(D(0), D(3))  # going flat always trades
    assert worth_trading(D(-10), D(10)) and worth_trading(D(10), D(0))
