"""Every pre-trade check rejects what it must (naming the rule and the numbers) and passes what it must."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from procs.executor import risk
from procs.executor.risk import OrderIntent, RiskContext, RiskLimits, first_rejection, is_reduce_only
from procs.executor.sizing import QuoteSnapshot

NOW = 1_795_000_000 * 10**9
D = Decimal

LIMITS = RiskLimits(
    symbols=frozenset({"AAPL", "MSFT"}),
    max_position_shares=D(1000),
    max_position_notional=D(50_000),
    max_order_notional=D(25_000),
    max_gross_exposure=D(200_000),
    max_open_positions=2,
    daily_loss_limit=D(5000),
    max_orders_per_minute=3,
    price_collar_bps=D(50),
    market_hours="regular",
    allow_reduce_only_when_halted=True,
)


def order(**kw: Any) -> OrderIntent:
    base: dict[str, Any] = dict(
        symbol="AAPL",
        side="BUY",
        quantity=D(100),
        order_type="LMT",
        limit_price=D("100.20"),
        reduce_only=False,
    )
    return OrderIntent(**{**base, **kw})


def ctx(**kw: Any) -> RiskContext:
    base: dict[str, Any] = dict(
        positions={},
        working={},
        marks={"AAPL": D(100), "MSFT": D(200)},
        quote=QuoteSnapshot(D("99.99"), D("100.01"), D(100), NOW),
        now_ns=NOW,
        session="regular",
        gateway_state="READY",
        gateway_ready=True,
    )
    return RiskContext(**{**base, **kw})


def test_a_plain_order_passes_every_check() -> None:
    assert first_rejection(order(), ctx(), LIMITS) is None


@pytest.mark.parametrize("qty", [D(0), D(-5), D("10.5"), D("NaN"), D(2_000_000)])
def test_quantity_rejects_zero_negative_fractional_nan_and_absurd(qty: Decimal) -> None:
    rej = risk.check_quantity(order(quantity=qty), ctx(), LIMITS)
    assert rej is not None and rej.rule == "quantity" and str(qty) in rej.detail


def test_quantity_passes_whole_shares() -> None:
    assert risk.check_quantity(order(quantity=D(1)), ctx(), LIMITS) is None


def test_symbol_rejects_unknown_but_lets_a_leftover_position_be_closed() -> None:
    rej = risk.check_symbol(order(symbol="ZZZZ"), ctx(), LIMITS)
    assert rej is not None and rej.rule == "symbol" and "ZZZZ" in rej.detail
    closing = order(symbol="ZZZZ", side="SELL", reduce_only=True)
    assert risk.check_symbol(closing, ctx(positions={"ZZZZ": D(10)}), LIMITS) is None
    assert risk.check_symbol(order(), ctx(), LIMITS) is None


def test_quote_rejects_missing_and_stale_quotes() -> None:
    rej = risk.check_quote(order(), ctx(quote=None), LIMITS)
    assert rej is not None and rej.rule == "quote" and "no quote" in rej.detail
    stale = QuoteSnapshot(D(99), D(101), D(100), NOW - 120 * 10**9)
    rej = risk.check_quote(order(), ctx(quote=stale), LIMITS)
    assert rej is not None and "120s old" in rej.detail
    assert risk.check_quote(order(), ctx(), LIMITS) is None


def test_halted_rejects_new_risk_but_allows_reduce_only_when_configured() -> None:
    halted = ctx(halted=True, halt_reason="daily loss", positions={"AAPL": D(100)})
    rej = risk.check_halted(order(), halted, LIMITS)
    assert rej is not None and rej.rule == "halted" and "daily loss" in rej.detail
    reducing = order(side="SELL", quantity=D(50), reduce_only=True)
    assert risk.check_halted(reducing, halted, LIMITS) is None
    strict = replace(LIMITS, allow_reduce_only_when_halted=False)
    assert risk.check_halted(reducing, halted, strict) is not None
    assert risk.check_halted(order(), ctx(), LIMITS) is None


def test_gateway_must_be_ready() -> None:
    rej = risk.check_gateway(order(), ctx(gateway_ready=False, gateway_state="DISCONNECTED"), LIMITS)
    assert rej is not None and rej.rule == "gateway" and "DISCONNECTED" in rej.detail
    assert risk.check_gateway(order(), ctx(), LIMITS) is None


def test_circuit_breaker_blocks_new_risk_only() -> None:
    rej = risk.check_circuit(order(), ctx(circuit_open=True), LIMITS)
    assert rej is not None and rej.rule == "circuit_breaker"
    assert risk.check_circuit(order(reduce_only=True), ctx(circuit_open=True), LIMITS) is None
    assert risk.check_circuit(order(), ctx(), LIMITS) is None


@pytest.mark.parametrize(
    ("session", "mode", "allowed"),
    [
        ("regular", "regular", True),
        ("pre", "regular", False),
        ("post", "regular", False),
        ("closed", "regular", False),
        ("pre", "extended", True),
        ("post", "extended", True),
        ("closed", "extended", False),
        ("closed", "always", True),
        (None, "regular", False),
    ],
)
def test_market_hours_follow_the_mode(session: Any, mode: Any, allowed: bool) -> None:
    rej = risk.check_market_hours(order(), ctx(session=session), replace(LIMITS, market_hours=mode))
    assert (rej is None) == allowed
    if rej is not None:
        assert rej.rule == "market_hours"


def test_daily_loss_rejects_at_the_limit_but_not_reductions() -> None:
    rej = risk.check_daily_loss(order(), ctx(daily_pnl=D(-5000)), LIMITS)
    assert rej is not None and rej.rule == "daily_loss" and "-5,000.00" in rej.detail
    assert risk.check_daily_loss(order(reduce_only=True), ctx(daily_pnl=D(-6000)), LIMITS) is None
    assert risk.check_daily_loss(order(), ctx(daily_pnl=D("-4999.99")), LIMITS) is None


def test_order_rate_caps_orders_per_minute() -> None:
    rej = risk.check_order_rate(order(), ctx(orders_last_minute=3), LIMITS)
    assert rej is not None and rej.rule == "order_rate" and "3 orders" in rej.detail
    assert risk.check_order_rate(order(), ctx(orders_last_minute=2), LIMITS) is None


def test_collar_rejects_a_limit_too_far_from_the_quote() -> None:
    # reference = mid 100.00; 50 bps = 0.50
    rej = risk.check_collar(order(limit_price=D("100.51")), ctx(), LIMITS)
    assert rej is not None and rej.rule == "price_collar" and "51.0 bps" in rej.detail
    assert risk.check_collar(order(limit_price=D("100.50")), ctx(), LIMITS) is None
    assert risk.check_collar(order(side="SELL", limit_price=D("99.49")), ctx(), LIMITS) is not None
    assert risk.check_collar(order(order_type="MKT", limit_price=None), ctx(), LIMITS) is None


def test_order_notional_cap() -> None:
    big = order(quantity=D(300), limit_price=D(100))  # 30,000 > 25,000
    rej = risk.check_order_notional(big, ctx(), LIMITS)
    assert rej is not None and rej.rule == "order_notional" and "30,000.00" in rej.detail
    assert risk.check_order_notional(order(quantity=D(250), limit_price=D(100)), ctx(), LIMITS) is None
    assert risk.check_order_notional(replace(big, reduce_only=True), ctx(), LIMITS) is None


def test_position_shares_cap_counts_working_orders() -> None:
    c = ctx(positions={"AAPL": D(800)}, working={"AAPL": D(150)})
    rej = risk.check_position_shares(order(quantity=D(100)), c, LIMITS)
    assert rej is not None and rej.rule == "position_shares" and "1050" in rej.detail
    assert risk.check_position_shares(order(quantity=D(50)), c, LIMITS) is None


def test_position_notional_cap() -> None:
    c = ctx(positions={"AAPL": D(400)})
    rej = risk.check_position_notional(order(quantity=D(100), limit_price=D(101)), c, LIMITS)
    assert rej is not None and rej.rule == "position_notional" and "50,500.00" in rej.detail
    assert risk.check_position_notional(order(quantity=D(90), limit_price=D(101)), c, LIMITS) is None


def test_gross_exposure_cap_sums_every_symbol() -> None:
    c = ctx(positions={"MSFT": D(-990)})  # 990 x 200 = 198,000 short
    rej = risk.check_gross_exposure(order(quantity=D(30), limit_price=D(100)), c, LIMITS)
    assert rej is not None and rej.rule == "gross_exposure" and "201,000.00" in rej.detail
    assert risk.check_gross_exposure(order(quantity=D(20), limit_price=D(100)), c, LIMITS) is None


def test_open_positions_cap_counts_only_new_symbols() -> None:
    c = ctx(positions={"MSFT": D(10), "SPY": D(-5)})
    rej = risk.check_open_positions(order(), c, LIMITS)
    assert rej is not None and rej.rule == "open_positions" and "2 symbols" in rej.detail
    adding = ctx(positions={"AAPL": D(10), "MSFT": D(10)})
    assert risk.check_open_positions(order(), adding, LIMITS) is None


def test_first_rejection_reports_the_first_rule_broken() -> None:
    rej = first_rejection(order(symbol="ZZZZ"), ctx(quote=None), LIMITS)
    assert rej is not None and rej.rule == "symbol"
    rej = first_rejection(order(), ctx(quote=None), LIMITS)
    assert rej is not None and rej.rule == "quote"


def test_reduce_only_means_toward_zero_without_crossing() -> None:
    assert is_reduce_only("SELL", D(100), D(100))
    assert is_reduce_only("BUY", D(40), D(-50))
    assert not is_reduce_only("SELL", D(101), D(100))  # crosses to short
    assert not is_reduce_only("BUY", D(10), D(100))  # adds
    assert not is_reduce_only("SELL", D(10), D(0))  # opens a short
