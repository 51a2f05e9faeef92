"""Every message the simulator sends, decoded by ib_async's own Decoder at server version 178.

ib_async drops a message whose layout is off by one field and only logs it, so each case asserts both what the
wrapper was called with and that the Decoder logged no error. A coverage test fails when a new encoder appears
in wire.py or wire_orders.py without a case here.
"""

from __future__ import annotations

import inspect
import logging
import struct
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from ib_async.client import Client
from ib_async.decoder import Decoder

from procs.gateway_sim import wire, wire_orders
from procs.gateway_sim.contracts import DEFAULT_CONTRACTS, with_hours
from procs.gateway_sim.orders import SimExecution, SimOrder
from procs.gateway_sim.wire_requests import parse_place_order

AAPL = with_hours(DEFAULT_CONTRACTS["AAPL"], datetime(2026, 11, 23, 15, tzinfo=UTC))
SPY = DEFAULT_CONTRACTS["SPY"]
ORDER = SimOrder(
    order_id=11,
    client_id=7,
    perm_id=1002,
    account="DU1234567",
    symbol="AAPL",
    con_id=265598,
    action="BUY",
    total_qty=Decimal(300),
    order_type="LMT",
    lmt_price=Decimal("190.01"),
    aux_price=None,
    tif="DAY",
    order_ref="cid-42",
    status="Submitted",
    filled=Decimal(100),
    avg_fill_price=Decimal("190.005"),
    last_fill_price=Decimal("190.01"),
)
EXECUTION = SimExecution(
    exec_id="0000e0d5.00000001.01.01",
    order_id=11,
    client_id=7,
    perm_id=1002,
    account="DU1234567",
    symbol="AAPL",
    con_id=265598,
    side="BOT",
    shares=Decimal(100),
    price=Decimal("190.01"),
    cum_qty=Decimal(100),
    avg_price=Decimal("190.01"),
    time_ns=1_767_366_000 * 10**9,
    order_ref="cid-42",
    commission=Decimal("1.00"),
    exchange="NASDAQ",
)


class Recorder:
    """A stand-in wrapper that records every call the Decoder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.defaultTimezone = UTC
        self.ib = SimpleNamespace(TimezoneTWS=None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def fields_of(data: bytes) -> list[list[str]]:
    """Split framed bytes exactly as ib_async's Client._onSocketHasData does."""
    out = []
    while data:
        (size,) = struct.unpack(">I", data[:4])
        msg = data[4 : 4 + size].decode(errors="backslashreplace")
        data = data[4 + size :]
        fields = msg.split("\0")
        fields.pop()
        out.append(fields)
    assert not data
    return out


def decode(data: bytes, caplog: pytest.LogCaptureFixture) -> list[tuple[str, tuple[Any, ...]]]:
    rec = Recorder()
    decoder = Decoder(rec, 178)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="ib_async.Decoder"):
        for fields in fields_of(data):
            decoder.interpret(fields)  # type: ignore[no-untyped-call]
    errors = [r.getMessage() for r in caplog.records if r.name == "ib_async.Decoder"]
    assert not errors, errors
    return rec.calls


def only_call(data: bytes, caplog: pytest.LogCaptureFixture) -> tuple[str, tuple[Any, ...]]:
    calls = decode(data, caplog)
    assert len(calls) == 1, calls
    return calls[0]


COVERED: set[str] = set()


F = TypeVar("F", bound=Callable[..., None])


def covers(*names: str) -> Callable[[F], F]:
    """Marks the encoders a test round-trips (see test_every_encoder_has_a_round_trip_case)."""
    COVERED.update(names)
    return lambda f: f


def test_ib_async_speaks_server_version_178_at_most() -> None:
    # An ib_async upgrade that moves this must come with a review of every layout in this file.
    assert Client.MaxClientVersion == 178
    assert Client.MinClientVersion == 157
    assert wire.SERVER_VERSION == 178


@covers("handshake_reply")
def test_handshake_reply_has_exactly_two_fields() -> None:
    [fields] = fields_of(wire.handshake_reply(178, "20261121 12:09:31 UTC"))
    assert fields == ["178", "20261121 12:09:31 UTC"]


@covers("next_valid_id", "managed_accounts", "current_time")
def test_session_messages(caplog: pytest.LogCaptureFixture) -> None:
    assert only_call(wire.next_valid_id(17), caplog) == ("nextValidId", (17,))
    assert only_call(wire.managed_accounts(["DU1234567"]), caplog) == ("managedAccounts", ("DU1234567",))
    assert only_call(wire.current_time(1735732800), caplog) == ("currentTime", (1735732800,))


@covers("error")
def test_error_carries_the_advanced_reject_field_required_at_166(caplog: pytest.LogCaptureFixture) -> None:
    name, args = only_call(wire.error(-1, 1100, "Connectivity between IBKR and TWS has been lost."), caplog)
    assert name == "error" and args[:3] == (-1, 1100, "Connectivity between IBKR and TWS has been lost.")
    assert wire.error(5, 200, "x") == b"\x00\x00\x00\x0d4\x002\x005\x00200\x00x\x00\x00"


@covers("contract_details", "contract_details_end")
def test_contract_details_fill_a_qualified_contract(caplog: pytest.LogCaptureFixture) -> None:
    calls = decode(wire.contract_details(3, AAPL) + wire.contract_details_end(3), caplog)
    (name, (req_id, cd)), end = calls
    assert (name, req_id, end) == ("contractDetails", 3, ("contractDetailsEnd", (3,)))
    c = cd.contract
    assert (c.conId, c.symbol, c.secType, c.exchange, c.primaryExchange, c.currency) == (
        265598,
        "AAPL",
        "STK",
        "SMART",
        "NASDAQ",
        "USD",
    )
    assert cd.minTick == 0.01 and cd.longName == "APPLE INC" and cd.timeZoneId == "US/Eastern"
    assert "0930" in cd.liquidHours and cd.tradingHours and cd.stockType == "COMMON"


@covers("market_data_type", "tick_price", "tick_size", "tick_snapshot_end")
def test_ticks(caplog: pytest.LogCaptureFixture) -> None:
    data = (
        wire.market_data_type(4, 1)
        + wire.tick_price(4, 1, 189.99, 300)
        + wire.tick_size(4, 8, 123456)
        + wire.tick_snapshot_end(4)
    )
    assert decode(data, caplog) == [
        ("marketDataType", (4, 1)),
        ("priceSizeTick", (4, 1, 189.99, 300.0)),
        ("tickSize", (4, 8, 123456.0)),
        ("tickSnapshotEnd", (4,)),
    ]


@covers("realtime_bar")
def test_realtime_bar(caplog: pytest.LogCaptureFixture) -> None:
    name, args = only_call(
        wire.realtime_bar(9, 1735828200, 190.0, 190.19, 189.81, 190.0, 100, 190.0, 7), caplog
    )
    assert name == "realtimeBar" and args == (9, 1735828200, 190.0, 190.19, 189.81, 190.0, 100.0, 190.0, 7)


@covers("historical_data", "historical_data_update", "head_timestamp")
def test_history(caplog: pytest.LogCaptureFixture) -> None:
    rows: list[wire.BarRow] = [
        ("20250102 09:30:00 US/Eastern", 190.0, 191.0, 189.0, 190.5, 1000, 190.2, 10),
        ("20250102 09:35:00 US/Eastern", 190.5, 192.0, 190.1, 191.7, 1200, 191.1, 12),
    ]
    calls = decode(wire.historical_data(4, "a", "b", rows), caplog)
    assert [c[0] for c in calls] == ["historicalData", "historicalData", "historicalDataEnd"]
    bar = calls[1][1][1]
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.average, bar.barCount) == (
        190.5,
        192.0,
        190.1,
        191.7,
        1200.0,
        191.1,
        12,
    )
    _, (req_id, update) = only_call(wire.historical_data_update(4, rows[0]), caplog)
    assert (req_id, update.open, update.high, update.low, update.close, update.volume) == (
        4,
        190.0,
        191.0,
        189.0,
        190.5,
        1000.0,
    )
    assert only_call(wire.head_timestamp(8, "946909800"), caplog) == ("headTimestamp", (8, "946909800"))


@covers("account_value", "portfolio_value", "account_time", "account_download_end")
def test_account_updates(caplog: pytest.LogCaptureFixture) -> None:
    data = (
        wire.account_value("NetLiquidation", "101881.50", "USD", "DU1234567")
        + wire.portfolio_value(AAPL, Decimal(10), 191.5, 1915.0, Decimal("180.0"), 115.0, 0.0, "DU1234567")
        + wire.account_time("14:30")
        + wire.account_download_end("DU1234567")
    )
    calls = decode(data, caplog)
    assert calls[0] == ("updateAccountValue", ("NetLiquidation", "101881.50", "USD", "DU1234567"))
    name, (contract, *numbers, account) = calls[1]
    assert name == "updatePortfolio" and contract.conId == 265598 and contract.primaryExchange == "NASDAQ"
    assert numbers == [10.0, 191.5, 1915.0, 180.0, 115.0, 0.0] and account == "DU1234567"
    assert calls[2:] == [("updateAccountTime", ("14:30",)), ("accountDownloadEnd", ("DU1234567",))]


@covers("position", "position_end")
def test_positions(caplog: pytest.LogCaptureFixture) -> None:
    calls = decode(
        wire.position("DU1234567", SPY, Decimal(-5), Decimal("580.25")) + wire.position_end(), caplog
    )
    name, (account, contract, qty, cost) = calls[0]
    assert (name, account, contract.symbol, contract.conId, qty, cost) == (
        "position",
        "DU1234567",
        "SPY",
        756733,
        -5.0,
        580.25,
    )
    assert calls[1] == ("positionEnd", ())


@covers("account_summary", "account_summary_end", "account_update_multi", "account_update_multi_end")
def test_account_summary_and_multi(caplog: pytest.LogCaptureFixture) -> None:
    data = (
        wire.account_summary(5, "DU1234567", "NetLiquidation", "1000000.00", "USD")
        + wire.account_summary_end(5)
        + wire.account_update_multi(6, "DU1234567", "TotalCashValue", "99.5", "USD")
        + wire.account_update_multi_end(6)
    )
    assert decode(data, caplog) == [
        ("accountSummary", (5, "DU1234567", "NetLiquidation", "1000000.00", "USD")),
        ("accountSummaryEnd", (5,)),
        ("accountUpdateMulti", (6, "DU1234567", "", "TotalCashValue", "99.5", "USD")),
        ("accountUpdateMultiEnd", (6,)),
    ]


@covers("open_order", "order_status", "open_order_end")
def test_open_order_and_status(caplog: pytest.LogCaptureFixture) -> None:
    data = wire_orders.open_order(ORDER, AAPL) + wire_orders.order_status(ORDER) + wire.open_order_end()
    assert len(fields_of(wire_orders.open_order(ORDER, AAPL))[0]) == 127
    (n1, (oid, contract, order, state)), (n2, status), end = decode(data, caplog)
    assert (n1, oid, contract.conId, contract.symbol) == ("openOrder", 11, 265598, "AAPL")
    assert (order.orderId, order.clientId, order.permId, order.action, order.totalQuantity) == (
        11,
        7,
        1002,
        "BUY",
        300,
    )
    assert (order.orderType, order.lmtPrice, order.orderRef, order.account) == (
        "LMT",
        190.01,
        "cid-42",
        "DU1234567",
    )
    assert state.status == "Submitted" and not order.whatIf
    assert (n2, status) == (
        "orderStatus",
        (11, "Submitted", 100.0, 200.0, 190.005, 1002, 0, 190.01, 7, "", 0.0),
    )
    assert end == ("openOrderEnd", ())


@covers("completed_order", "completed_orders_end")
def test_completed_order(caplog: pytest.LogCaptureFixture) -> None:
    done = replace(ORDER, status="Filled", filled=Decimal(300))
    assert len(fields_of(wire_orders.completed_order(done, AAPL, "20250102 09:31:00 US/Eastern"))[0]) == 96
    calls = decode(wire_orders.completed_order(done, AAPL, "t") + wire.completed_orders_end(), caplog)
    (name, (contract, order, state)), end = calls
    assert (name, contract.conId, order.permId, order.orderRef, order.totalQuantity) == (
        "completedOrder",
        265598,
        1002,
        "cid-42",
        300,
    )
    assert (state.status, state.completedStatus, order.filledQuantity) == ("Filled", "Filled", 300.0)
    assert end == ("completedOrdersEnd", ())


@covers("exec_details", "exec_details_end", "commission_report")
def test_execution_and_commission(caplog: pytest.LogCaptureFixture) -> None:
    data = (
        wire_orders.exec_details(-1, EXECUTION, AAPL, "20260102 10:00:00 US/Eastern")
        + wire.exec_details_end(3)
        + wire.commission_report(EXECUTION.exec_id, Decimal("1.00"), "USD", None)
    )
    (name, (req_id, contract, ex)), end, (cname, (report,)) = decode(data, caplog)
    assert (name, req_id, contract.conId, contract.exchange) == ("execDetails", -1, 265598, "NASDAQ")
    assert (ex.execId, ex.orderId, ex.permId, ex.clientId, ex.side, ex.shares, ex.price) == (
        EXECUTION.exec_id,
        11,
        1002,
        7,
        "BOT",
        100.0,
        190.01,
    )
    assert (ex.orderRef, ex.cumQty, ex.avgPrice, ex.acctNumber) == ("cid-42", 100.0, 190.01, "DU1234567")
    assert ex.time == datetime(2026, 1, 2, 15, 0, tzinfo=UTC)
    assert end == ("execDetailsEnd", (3,))
    assert (cname, report.execId, report.commission, report.currency) == (
        "commissionReport",
        EXECUTION.exec_id,
        1.0,
        "USD",
    )


def test_every_encoder_has_a_round_trip_case() -> None:
    encoders = {
        name
        for module in (wire, wire_orders)
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if fn.__module__ == module.__name__ and inspect.signature(fn).return_annotation in ("bytes", bytes)
    }
    encoders -= {"frame", "frame_text", "encode_all"}
    assert encoders - COVERED == set()


def test_place_order_is_parsed_from_ib_async_own_bytes() -> None:
    """The request side: ib_async's Client.placeOrder bytes, captured, parse to the order it sent."""
    from ib_async import LimitOrder, Stock

    sent: list[bytes] = []
    client = Client(SimpleNamespace())  # type: ignore[no-untyped-call]
    client.connState = Client.CONNECTED
    client._serverVersion = 178
    client.conn = SimpleNamespace(sendMsg=sent.append, numBytesSent=0, numMsgSent=0)  # type: ignore[assignment]
    contract = Stock("AAPL", "SMART", "USD", conId=265598)
    order = LimitOrder("SELL", 25, 190.05, orderRef="cid-7", tif="GTC")
    client.placeOrder(12, contract, order)  # type: ignore[no-untyped-call]
    [fields] = fields_of(sent[0])
    req = parse_place_order(fields)
    assert (req.order_id, req.contract.con_id, req.contract.symbol, req.action) == (
        12,
        265598,
        "AAPL",
        "SELL",
    )
    assert (req.total_qty, req.order_type, req.lmt_price, req.tif, req.order_ref) == (
        Decimal(25),
        "LMT",
        Decimal("190.05"),
        "GTC",
        "cid-7",
    )
