"""The simulated broker: fills (whole, partial, limit, stop), modify, cancel, 103, and exact account arithmetic."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procs.gateway_sim.broker import SimBroker
from procs.gateway_sim.contracts import DEFAULT_CONTRACTS
from procs.gateway_sim.holdings import option_contract
from procs.gateway_sim.orders import (
    AccountChanged,
    Executed,
    OrderChanged,
    OrderRejected,
    PositionChanged,
    SimEvent,
    SimExecution,
    SimOrder,
)

D = Decimal
ACCOUNT = "DU1234567"


def order(
    order_id: int,
    action: str = "BUY",
    qty: str = "100",
    order_type: str = "MKT",
    lmt: str | None = None,
    stop: str | None = None,
    client_id: int = 1,
    ref: str = "ref-1",
    symbol: str = "AAPL",
    tif: str = "DAY",
) -> SimOrder:
    return SimOrder(
        order_id=order_id,
        client_id=client_id,
        perm_id=0,
        account="",
        symbol=symbol,
        con_id=265598,
        action=action,
        total_qty=D(qty),
        order_type=order_type,
        lmt_price=None if lmt is None else D(lmt),
        aux_price=None if stop is None else D(stop),
        tif=tif,
        order_ref=ref,
        status="PendingSubmit",
        filled=D(0),
        avg_fill_price=D(0),
        last_fill_price=D(0),
    )


def fills(events: list[SimEvent]) -> list[SimExecution]:
    return [e.execution for e in events if isinstance(e, Executed)]


def statuses(events: list[SimEvent]) -> list[tuple[str, Decimal]]:
    return [(e.order.status, e.order.filled) for e in events if isinstance(e, OrderChanged)]


def rejection(events: list[SimEvent]) -> tuple[int, str]:
    assert len(events) == 1 and isinstance(events[0], OrderRejected), events
    return events[0].code, events[0].message


@pytest.fixture
def broker() -> SimBroker:
    return SimBroker(ACCOUNT, cash=D("100000"), session_id=0xE0D5)


# --- fills ------------------------------------------------------------------------------------------------------


def test_market_order_fills_at_once_at_the_ask_in_the_order_ib_reports(broker: SimBroker) -> None:
    events = broker.place(order(1, qty="100", ref="my-ref"), 230.01, 1_000, bid=230.00, ask=230.02)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["OrderChanged", "OrderChanged", "Executed", "PositionChanged", "AccountChanged"]
    assert statuses(events) == [("Submitted", D(0)), ("Filled", D(100))]
    (fill,) = fills(events)
    assert (fill.side, fill.shares, fill.price, fill.order_ref, fill.account) == (
        "BOT",
        D(100),
        D("230.02"),
        "my-ref",
        ACCOUNT,
    )
    assert fill.time_ns == 1_000 and fill.cum_qty == D(100) and fill.avg_price == D("230.02")
    sell = fills(broker.place(order(2, "SELL", "100"), 230.01, 2_000, bid=230.00, ask=230.02))
    assert sell[0].price == D("230.00") and sell[0].side == "SLD"


def test_a_large_order_fills_in_chunks_that_add_up_to_the_total(broker: SimBroker) -> None:
    events = broker.place(order(1, qty="1200"), 100.0, 1)
    chunks = fills(events)
    assert [f.shares for f in chunks] == [D(500), D(500), D(200)]
    assert [f.cum_qty for f in chunks] == [D(500), D(1000), D(1200)]
    assert statuses(events)[-1] == ("Filled", D(1200))
    assert len({f.exec_id for f in chunks}) == 3


def test_limit_order_waits_then_fills_at_its_limit_in_visible_partial_fills(broker: SimBroker) -> None:
    assert fills(broker.place(order(1, "BUY", "1200", "LMT", lmt="99.50"), 100.0, 1)) == []
    assert fills(broker.on_price("AAPL", 99.60, 2)) == []
    seen: list[SimExecution] = []
    partial_states = []
    for t in range(3, 10):
        events = broker.on_price("AAPL", 99.40, t)
        seen += fills(events)
        partial_states += [s for s in statuses(events) if s[0] == "Submitted"]
    assert [f.shares for f in seen] == [D(500), D(500), D(200)]
    assert {f.price for f in seen} == {D("99.50")}  # a resting limit gets its own price
    assert partial_states == [("Submitted", D(500)), ("Submitted", D(1000))]
    assert broker.order(1) is not None and broker.order(1).status == "Filled"  # type: ignore[union-attr]
    assert broker.open_orders() == []


def test_marketable_limit_fills_at_the_better_price_on_arrival(broker: SimBroker) -> None:
    (fill,) = fills(
        broker.place(order(1, "BUY", "100", "LMT", lmt="101.00"), 100.0, 1, bid=99.99, ask=100.01)
    )
    assert fill.price == D("100.01")


def test_stop_becomes_market_when_touched(broker: SimBroker) -> None:
    broker.place(order(1, "BUY", "300"), 100.0, 1)
    assert fills(broker.place(order(2, "SELL", "300", "STP", stop="95.00"), 100.0, 2)) == []
    assert fills(broker.on_price("AAPL", 95.01, 3)) == []
    stopped = fills(broker.on_price("AAPL", 94.80, 4))
    assert [(f.shares, f.price) for f in stopped] == [(D(300), D("94.80"))]
    assert broker.positions()[0].position == 0


def test_ioc_cancels_what_it_could_not_fill_on_arrival(broker: SimBroker) -> None:
    events = broker.place(order(1, "BUY", "800", "LMT", lmt="100.00", tif="IOC"), 100.0, 1)
    assert [f.shares for f in fills(events)] == [D(500)]
    assert statuses(events)[-1] == ("Cancelled", D(500))


def test_fill_now_fills_a_working_order_whatever_its_limit(broker: SimBroker) -> None:
    broker.place(order(1, "BUY", "700", "LMT", lmt="90.00"), 100.0, 1)
    events = broker.fill_now(1, 100.0, 2)
    assert sum(f.shares for f in fills(events)) == D(700) and isinstance(events[-1], AccountChanged)
    assert broker.fill_now(1, 100.0, 3) == []


# --- modify, cancel, rejections -----------------------------------------------------------------------------------


def test_replacing_a_working_order_id_modifies_it_in_place(broker: SimBroker) -> None:
    first = broker.place(order(7, "BUY", "100", "LMT", lmt="95.00", ref="a"), 100.0, 1)
    perm_id = statuses_order(first).perm_id
    events = broker.place(order(7, "BUY", "200", "LMT", lmt="99.00", ref="a"), 100.0, 2)
    changed = statuses_order(events)
    assert (changed.perm_id, changed.total_qty, changed.lmt_price) == (perm_id, D(200), D("99.00"))
    assert fills(broker.on_price("AAPL", 98.90, 3))[0].price == D("99.00")
    assert len(broker.open_orders()) == 0 and broker.completed_orders()[0].total_qty == D(200)


def statuses_order(events: list[SimEvent]) -> SimOrder:
    return next(e.order for e in events if isinstance(e, OrderChanged))


def test_modify_below_the_filled_quantity_is_refused_and_the_order_stays(broker: SimBroker) -> None:
    broker.place(order(1, "BUY", "1000", "LMT", lmt="100.00"), 101.0, 1)
    broker.on_price("AAPL", 100.0, 2)  # 500 filled
    code, message = rejection(broker.place(order(1, "BUY", "400", "LMT", lmt="100.00"), 101.0, 3))
    assert code == 321 and "already filled" in message
    (still,) = broker.open_orders()
    assert (still.total_qty, still.filled) == (D(1000), D(500))
    code, _ = rejection(broker.place(order(1, "SELL", "1000", "LMT", lmt="100.00"), 101.0, 4))
    assert code == 105


def test_cancel_a_working_order_then_its_id_is_spent(broker: SimBroker) -> None:
    broker.place(order(3, "BUY", "100", "LMT", lmt="90.00"), 100.0, 1)
    assert statuses(broker.cancel(3, 2)) == [("Cancelled", D(0))]
    assert broker.open_orders() == [] and broker.completed_orders()[0].status == "Cancelled"
    assert rejection(broker.cancel(3, 3))[0] == 10148
    assert rejection(broker.cancel(99, 3))[0] == 10147
    assert rejection(broker.place(order(3, "BUY", "100", "LMT", lmt="90.00"), 100.0, 4)) == (
        103,
        "Duplicate order id",
    )


def test_reusing_a_filled_order_id_or_another_clients_id_gets_103(broker: SimBroker) -> None:
    broker.place(order(1), 100.0, 1)
    assert rejection(broker.place(order(1), 100.0, 2))[0] == 103
    broker.place(order(2, "BUY", "100", "LMT", lmt="90.00", client_id=1), 100.0, 3)
    assert (
        rejection(broker.place(order(2, "BUY", "100", "LMT", lmt="91.00", client_id=2), 100.0, 4))[0] == 103
    )
    assert rejection(broker.cancel(2, 5, client_id=2))[0] == 10147
    assert broker.open_orders(client_id=1)[0].lmt_price == D("90.00")
    assert broker.open_orders(client_id=2) == []
    assert broker.next_valid_id() == 3


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (order(1, "BUY", "100", "LMT"), 201),  # no limit price
        (order(1, "BUY", "100", "STP"), 201),  # no stop price
        (order(1, "BUY", "0"), 201),
        (order(1, "HOLD", "100"), 201),
        (order(1, "BUY", "100", "TRAIL"), 201),  # no trailing percent
        (order(1, "BUY", "100", "REL"), 387),
        (order(1, "BUY", "100", "LMT", lmt="100.005"), 110),  # off the tick
    ],
)
def test_invalid_orders_are_rejected_and_never_work(broker: SimBroker, bad: SimOrder, code: int) -> None:
    assert rejection(broker.place(bad, 100.0, 1))[0] == code
    assert broker.open_orders() == [] and broker.executions() == []


# --- money ----------------------------------------------------------------------------------------------------


def test_cash_positions_and_realized_pnl_are_exact_through_a_flip(broker: SimBroker) -> None:
    broker.place(order(1, "BUY", "300"), 10.00, 1)  # 1.50 commission
    broker.place(order(2, "SELL", "500"), 12.00, 2)  # closes 300, opens 200 short; 2.50 commission
    broker.place(order(3, "BUY", "200"), 11.00, 3)  # closes the short; 1.00 commission
    books = broker.books
    assert books.cash == D("100000") - D("3000") - D("1.5") + D("6000") - D("2.5") - D("2200") - D("1.0")
    assert books.commissions == D("5.0")
    # long: 300 x (12 - 10) - 1.50 - 300/500 of 2.50; short: 200 x (12 - 11) - 200/500 of 2.50 - 1.00
    assert books.realized == D("600") - D("1.5") - D("1.5") + D("200") - D("1.0") - D("1.0")
    assert books.realized == books.cash - D("100000")  # flat again: every dollar is realized
    assert [(p.position, p.avg_cost) for p in broker.positions()] == [(D(0), D(0))]
    position_events = [
        e for e in broker.place(order(4, "BUY", "300"), 10.00, 4) if isinstance(e, PositionChanged)
    ]
    assert (position_events[-1].position, position_events[-1].avg_cost) == (
        D(300),
        D("10.005000"),
    )  # incl. commission


def test_commission_is_per_share_with_a_minimum_and_a_one_percent_cap() -> None:
    def commission(qty: str, price: float) -> Decimal:
        b = SimBroker(ACCOUNT, session_id=1)
        return sum((f.commission for f in fills(b.place(order(1, "BUY", qty), price, 1))), D(0))

    assert commission("1000", 100.0) == D("5.000")
    assert commission("100", 50.0) == D("1.00")  # 0.50 per share is below the minimum
    assert commission("1", 50.0) == D("0.50")  # but never above 1% of the trade value
    assert commission("1200", 100.0) == D("6.000")  # chunks charge what the whole order costs


def test_account_values_and_portfolio_mark_positions_to_market(broker: SimBroker) -> None:
    broker.place(order(1, "BUY", "100"), 50.00, 1)  # cash 100000 - 5000 - 1
    values = {
        tag: value for tag, value, currency in broker.account_values(lambda s: 55.0) if currency == "USD"
    }
    assert values["TotalCashValue"] == "94999.00"
    assert values["NetLiquidation"] == "100499.00"
    assert values["GrossPositionValue"] == "5500.00"
    assert values["UnrealizedPnL"] == "499.00"
    assert values["RealizedPnL"] == "0.00"
    assert float(values["BuyingPower"]) > float(values["AvailableFunds"]) > 0
    assert broker.portfolio(lambda s: 55.0) == [
        ("AAPL", 265598, D(100), 55.0, 5500.0, D("50.010000"), 499.0, 0.0)
    ]


def test_exec_ids_are_unique_and_shaped_like_ibs(broker: SimBroker) -> None:
    for i in range(1, 6):
        broker.place(order(i, "BUY" if i % 2 else "SELL", "700"), 100.0, i)
    ids = [e.exec_id for e in broker.executions()]
    assert len(ids) == len(set(ids)) == 10
    assert all(re.fullmatch(r"0000e0d5\.[0-9a-f]{8}\.01\.01", i) for i in ids)
    assert SimBroker(ACCOUNT, session_id=0xE0D6).place(order(1), 1.0, 1)[2].execution.exec_id not in ids  # type: ignore[union-attr]


def test_executions_filter_by_client_and_time(broker: SimBroker) -> None:
    broker.place(order(1, client_id=1), 100.0, 10)
    broker.place(order(2, client_id=2), 100.0, 20)
    assert [e.order_id for e in broker.executions()] == [1, 2]
    assert [e.order_id for e in broker.executions(client_id=2)] == [2]
    assert [e.order_id for e in broker.executions(since_ns=15)] == [2]


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(1, 1500), st.integers(100, 50_000)),
        min_size=1,
        max_size=12,
    )
)
def test_net_liquidation_change_is_always_realized_plus_unrealized(
    trades: list[tuple[bool, int, int]],
) -> None:
    broker = SimBroker(ACCOUNT, cash=D("1000000"), session_id=1)
    for i, (buy, qty, cents) in enumerate(trades, start=1):
        broker.place(order(i, "BUY" if buy else "SELL", str(qty)), cents / 100, i)
    books = broker.books
    holding = books.holdings["AAPL"]
    mark = D("123.45")
    unrealized = holding.position * mark - holding.basis
    assert books.cash + holding.position * mark - D("1000000") == books.realized + unrealized
    assert holding.position == sum((D(q) if b else -D(q)) for b, q, _ in trades)
    assert books.commissions == sum((e.commission for e in broker.executions()), D(0))


# --- corrections, manual orders, untraded holdings -------------------------------------------------------------


def test_a_correction_replaces_the_execution_with_the_next_exec_id_suffix(broker: SimBroker) -> None:
    (first,) = fills(broker.place(order(1, "BUY", "100"), 50.00, 1))
    assert first.exec_id.endswith(".01.01")
    events = broker.correct_execution(first.exec_id, price=D("50.10"))
    (fixed,) = fills(events)
    assert fixed.exec_id == first.exec_id[:-2] + "02"
    assert (fixed.order_id, fixed.shares, fixed.price, fixed.time_ns) == (
        1,
        D(100),
        D("50.10"),
        first.time_ns,
    )
    assert [e.exec_id for e in broker.executions()] == [
        fixed.exec_id
    ]  # the corrected one is no longer listed
    assert broker.replaced_executions() == [(first, fixed.exec_id)]
    again = fills(broker.correct_execution(fixed.exec_id, quantity=D(60)))[0]
    assert again.exec_id == first.exec_id[:-2] + "03" and again.price == D("50.10")
    assert broker.order(1).filled == D(60)  # type: ignore[union-attr]


def test_after_a_correction_the_books_are_those_of_the_corrected_fills(broker: SimBroker) -> None:
    """The same trades booked with the corrected values from the start give the same cash, position and P&L."""
    (buy,) = fills(broker.place(order(1, "BUY", "300"), 10.00, 1))
    broker.place(order(2, "SELL", "100"), 12.00, 2)
    events = broker.correct_execution(buy.exec_id, price=D("10.40"), quantity=D(250))
    straight = SimBroker(ACCOUNT, cash=D("100000"), session_id=0xE0D5)
    straight.place(order(1, "BUY", "250"), 10.40, 1)
    straight.place(order(2, "SELL", "100"), 12.00, 2)
    assert (broker.books.cash, broker.books.realized, broker.books.commissions) == (
        straight.books.cash,
        straight.books.realized,
        straight.books.commissions,
    )
    assert broker.positions() == straight.positions()
    [moved] = [e for e in events if isinstance(e, PositionChanged)]
    assert (moved.position, moved.avg_cost) == (D(150), straight.positions()[0].avg_cost)
    assert broker.executions()[1].realized_pnl == straight.executions()[1].realized_pnl


def test_a_correction_is_refused_for_an_unknown_or_already_corrected_exec_id(broker: SimBroker) -> None:
    (fill,) = fills(broker.place(order(1, "BUY", "100"), 50.00, 1))
    with pytest.raises(ValueError, match="is not an execution"):
        broker.correct_execution("0000e0d5.deadbeef.01.01")
    with pytest.raises(ValueError, match="beyond its 100"):
        broker.correct_execution(fill.exec_id, quantity=D(101))
    broker.correct_execution(fill.exec_id, price=D(51))
    with pytest.raises(ValueError, match="already corrected"):
        broker.correct_execution(fill.exec_id, price=D(52))
    assert broker.books.holdings["AAPL"].position == D(100)


def test_manual_orders_get_negative_ids_that_never_move_the_next_valid_id(broker: SimBroker) -> None:
    broker.place(order(5), 50.0, 1)
    manual = order(broker.next_manual_order_id(), client_id=0, ref="")
    fills(broker.place(manual, 50.0, 2))
    assert manual.order_id == -1 and broker.next_manual_order_id() == -2
    assert broker.next_valid_id() == 6
    assert broker.position("AAPL") == D(200)


def test_an_option_holding_is_its_own_contract_never_added_into_the_stock(broker: SimBroker) -> None:
    broker.place(order(1, "BUY", "100"), 50.00, 1)
    option = option_contract(DEFAULT_CONTRACTS["AAPL"], 231.0, date(2026, 3, 2))
    assert (option.strike, option.right, option.multiplier, option.last_trade_date) == (
        230.0,
        "C",
        "100",
        "20260417",
    )
    assert option.local_symbol == "AAPL  260417C00230000" and option.con_id != 265598
    broker.set_holding(option, D(2), D("9.25"))
    by_con_id = {p.con_id: (p.symbol, p.position, p.avg_cost) for p in broker.positions()}
    assert by_con_id == {265598: ("AAPL", D(100), D("50.010000")), option.con_id: ("AAPL", D(2), D("925.00"))}
    values = {tag: v for tag, v, cur in broker.account_values(lambda s: 50.0) if cur == "USD"}
    assert values["NetLiquidation"] == str((broker.books.cash + D(5000) + D(1850)).quantize(D("0.01")))
    [gone, _] = broker.set_holding(option, D(0), D("9.25"))
    assert isinstance(gone, PositionChanged) and gone.position == 0 and gone.contract == option
    assert [p.con_id for p in broker.positions()] == [265598]


def test_the_largest_position_a_stock_ever_reached_is_kept(broker: SimBroker) -> None:
    broker.place(order(1, "BUY", "300"), 50.0, 1)
    broker.place(order(2, "SELL", "700"), 50.0, 2)
    broker.place(order(3, "BUY", "400"), 50.0, 3)
    assert broker.position("AAPL") == 0 and broker.max_abs_position == {"AAPL": D(400)}
