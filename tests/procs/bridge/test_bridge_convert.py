"""Translations from ib_async objects to the stack's messages: exact money, masked accounts, UTC nanoseconds."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

from ib_async import (
    AccountValue,
    CommissionReport,
    Contract,
    Execution,
    Fill,
    Order,
    OrderStatus,
    Position,
    RealTimeBar,
    Ticker,
    Trade,
    TradeLogEntry,
)

from procs.bridge.ib import convert
from shared.messages import PlaceOrder

AAPL = Contract(conId=265598, symbol="AAPL", secType="STK", exchange="SMART", currency="USD")
T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)


def test_a_realtime_bar_starts_at_its_open_in_utc_ns() -> None:
    bar = convert.realtime_bar("AAPL", RealTimeBar(T0, -1, 190.0, 190.5, 189.5, 190.2, 300.0, 190.1, 7))
    assert bar.start_ns == int(T0.timestamp()) * 10**9 and bar.bar_seconds == 5
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.count) == (
        190.0,
        190.5,
        189.5,
        190.2,
        300.0,
        7,
    )


def test_a_ticker_without_any_price_is_not_a_quote() -> None:
    assert convert.quote(Ticker(contract=AAPL)) is None
    ticker = Ticker(contract=AAPL)
    ticker.bid, ticker.ask, ticker.time = 189.99, 190.01, T0  # as the wrapper fills it from ticks
    q = convert.quote(ticker)
    assert q is not None and q.symbol == "AAPL" and q.bid == 189.99 and math.isnan(q.last)


def test_an_order_event_carries_the_client_order_id_and_exact_prices() -> None:
    order = Order(
        orderId=11,
        permId=900,
        action="BUY",
        totalQuantity=10.0,
        orderType="LMT",
        lmtPrice=190.01,
        orderRef="ord-1",
    )
    trade = Trade(AAPL, order, OrderStatus(orderId=11, status="Submitted", filled=4.0, remaining=6.0), [], [])
    ev = convert.order_event(trade, "Submitted")
    assert ev.client_order_id == "ord-1" and ev.perm_id == 900 and ev.confirmed
    assert (
        ev.limit_price == Decimal("190.01")
        and ev.status == "PARTIALLY_FILLED"
        and ev.filled == Decimal("4.0")
    )


def test_an_error_cancelled_order_is_rejected_with_the_code_and_reason_but_not_confirmed() -> None:
    order = Order(orderId=12, action="SELL", totalQuantity=5.0, orderType="MKT", orderRef="ord-2")
    log = [TradeLogEntry(T0, "Cancelled", "Error 201, reqId 12: Order rejected - reason: margin", 201)]
    trade = Trade(AAPL, order, OrderStatus(orderId=12, status="Cancelled", remaining=5.0), [], log)
    ev = convert.order_event(trade, None)  # ib_async wrote Cancelled on the error; the Gateway said nothing
    assert ev.status == "REJECTED" and ev.error_code == 201 and "margin" in ev.reason and ev.side == "SELL"
    assert not ev.confirmed
    assert convert.order_event(trade, "Cancelled").confirmed  # the Gateway's own orderStatus said Cancelled


def test_an_informational_error_on_a_live_order_is_an_unconfirmed_final_status() -> None:
    order = Order(orderId=13, permId=901, action="BUY", totalQuantity=5.0, orderType="LMT", lmtPrice=1.0)
    log = [TradeLogEntry(T0, "Cancelled", "Error 10349, reqId 13: Order TIF was set to DAY", 10349)]
    trade = Trade(AAPL, order, OrderStatus(orderId=13, status="Cancelled", remaining=5.0), [], log)
    ev = convert.order_event(trade, "Submitted")
    assert (ev.status, ev.ib_status, ev.error_code, ev.confirmed) == ("REJECTED", "Cancelled", 10349, False)
    listed = convert.order_event(
        trade, "Submitted", as_listed=True
    )  # the Gateway lists it: its word is the state
    assert (listed.status, listed.ib_status, listed.error_code, listed.confirmed) == (
        "SUBMITTED",
        "Submitted",
        0,
        True,
    )


def test_an_unset_commission_is_unknown_never_zero() -> None:
    ex = Execution(
        execId="e9", time=T0, side="BOT", shares=1.0, price=10.0, orderRef="o", orderId=1, permId=2
    )
    unset = CommissionReport(execId="e9", commission=1.7976931348623157e308)
    assert convert.fill(Fill(AAPL, ex, unset, T0)).commission is None
    free = CommissionReport(execId="e9", commission=0.0)
    assert convert.fill(Fill(AAPL, ex, free, T0)).commission == Decimal("0.0")


def test_positions_are_per_contract_an_option_is_not_the_stock() -> None:
    option = Contract(
        conId=700001,
        symbol="AAPL",
        secType="OPT",
        lastTradeDateOrContractMonth="20261218",
        strike=200.0,
        right="C",
        multiplier="100",
        currency="USD",
        localSymbol="AAPL  261218C00200000",
    )
    stock = convert.position(Position("DU1234567", AAPL, 10.0, 190.5))
    opt = convert.position(Position("DU1234567", option, 2.0, 512.25))
    assert (stock.sec_type, stock.con_id, stock.quantity) == ("STK", 265598, Decimal("10.0"))
    assert (opt.sec_type, opt.con_id, opt.quantity, opt.local_symbol) == (
        "OPT",
        700001,
        Decimal("2.0"),
        "AAPL  261218C00200000",
    )
    assert opt.symbol == stock.symbol == "AAPL" and opt.currency == "USD" and opt.account == "DU****567"


def test_a_fill_has_exec_id_order_ref_commission_and_a_masked_account() -> None:
    ex = Execution(
        execId="e1",
        time=T0,
        acctNumber="DU1234567",
        side="BOT",
        shares=5.0,
        price=190.01,
        orderRef="ord-1",
        orderId=11,
        permId=900,
    )
    without = convert.fill(Fill(AAPL, ex, CommissionReport(), T0))
    assert (
        without.commission is None and without.client_order_id == "ord-1" and without.account == "DU****567"
    )
    with_c = convert.fill(Fill(AAPL, ex, CommissionReport(execId="e1", commission=1.0), T0))
    assert with_c.commission == Decimal("1.0") and with_c.price == Decimal("190.01") and with_c.side == "BUY"


def test_account_values_never_show_the_account_id() -> None:
    v = convert.account_value(AccountValue("DU1234567", "AccountCode", "DU1234567", "", ""))
    assert "1234567" not in v.value and "1234567" not in v.account


def test_history_parameters_use_ibs_words() -> None:
    assert convert.duration_string(3600) == "3600 S"
    assert convert.duration_string(86_400 * 3) == "3 D"
    assert convert.duration_string(86_400 * 800) == "3 Y"
    assert convert.BAR_SIZES[60] == "1 min" and convert.end_string(0) == ""
    assert convert.end_string(int(T0.timestamp()) * 10**9) == "20260102-14:30:00"


def test_a_place_order_becomes_an_ib_order_with_the_order_ref() -> None:
    req = PlaceOrder(
        client_order_id="ord-1",
        symbol="AAPL",
        side="SELL",
        quantity=Decimal(3),
        order_type="STP",
        stop_price=Decimal("180.5"),
        tif="GTC",
    )
    o = convert.ib_order(req, "DU1234567")
    assert (o.orderRef, o.action, o.totalQuantity, o.orderType, o.auxPrice, o.tif) == (
        "ord-1",
        "SELL",
        3.0,
        "STP",
        180.5,
        "GTC",
    )
