"""Every message the simulator sends, at every server version it accepts (157..178), decoded by IB's own client
(ibapi) and by ib_async.

ibapi is the spec: its decoder must read exactly the fields we wrote (one missing is a BadMessage, one extra
shifts everything after it unnoticed, so leftovers fail here) and hand its wrapper the right values. ib_async
must decode the same bytes without logging an error. The version thresholds must be ibapi's own numbers.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import replace
from datetime import UTC
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from ib_async.decoder import Decoder as IbAsyncDecoder
from ibapi import comm
from ibapi import server_versions as ib_versions
from ibapi.decoder import Decoder as IbapiDecoder
from ibapi.wrapper import EWrapper

from procs.gateway_sim import wire, wire_orders

VERSIONS = list(range(wire.MIN_CLIENT_VERSION, wire.SERVER_VERSION + 1))
# the same contracts, order and execution as the round-trip tests: one set of fixtures for the wire
from .test_wire_roundtrip import AAPL, EXECUTION, ORDER, SPY  # noqa: E402

Calls = list[tuple[str, tuple[Any, ...]]]


class IbapiRecorder(EWrapper):  # type: ignore[misc]
    """IB's EWrapper whose every callback is recorded instead of logged."""

    def __init__(self) -> None:
        self.calls: Calls = []

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name != "calls" and callable(getattr(EWrapper, name, None)):
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append((name, args))
        return object.__getattribute__(self, name)


class IbAsyncRecorder:
    """A stand-in for ib_async's Wrapper that records every call its Decoder makes."""

    def __init__(self) -> None:
        self.calls: Calls = []
        self.defaultTimezone = UTC
        self.ib = SimpleNamespace(TimezoneTWS=None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))


def payloads(data: bytes) -> list[bytes]:
    out = []
    while data:
        (size,) = struct.unpack(">I", data[:4])
        out.append(data[4 : 4 + size])
        data = data[4 + size :]
    return out


def ibapi_calls(data: bytes, version: int, caplog: pytest.LogCaptureFixture) -> Calls:
    """Decode as ibapi's EClient.run does below server version 201, and insist every field was read."""
    recorder = IbapiRecorder()
    decoder = IbapiDecoder(recorder, version)
    with caplog.at_level(logging.WARNING, logger="ibapi"):
        for payload in payloads(data):
            head, _, rest = payload.partition(b"\0")
            msg_id, fields = int(head), comm.read_fields(rest)
            info = IbapiDecoder.msgId2handleInfo[msg_id]
            if info.processMeth is None:  # wrapped: ibapi itself logs an error unless the count is exact
                decoder.interpret(fields, msg_id)
                continue
            unread = iter(fields)
            info.processMeth(decoder, unread)
            left = list(unread)
            assert not left, f"message {msg_id} at version {version}: ibapi left {left} unread"
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("ibapi")]
    assert not logged, logged
    return recorder.calls


def ib_async_calls(data: bytes, version: int, caplog: pytest.LogCaptureFixture) -> Calls:
    recorder = IbAsyncRecorder()
    decoder = IbAsyncDecoder(recorder, version)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="ib_async.Decoder"):
        for payload in payloads(data):
            decoder.interpret(payload.decode().split("\0")[:-1])  # type: ignore[no-untyped-call]
    errors = [r.getMessage() for r in caplog.records if r.name == "ib_async.Decoder"]
    assert not errors, errors
    return recorder.calls


def test_version_thresholds_are_ibapi_own_numbers() -> None:
    names = [n for n in dir(wire) if n.startswith("MIN_SERVER_VER_")]
    assert len(names) == 9
    for name in names:
        assert getattr(wire, name) == getattr(ib_versions, name), name
    assert ib_versions.MIN_SERVER_VER_PROTOBUF > wire.SERVER_VERSION  # text protocol throughout


def test_an_encoder_refuses_a_version_the_simulator_never_negotiates() -> None:
    for bad in (0, wire.MIN_CLIENT_VERSION - 1, wire.SERVER_VERSION + 1):
        with pytest.raises(ValueError, match="outside"):
            wire_orders.open_order(ORDER, AAPL, version=bad)
        with pytest.raises(ValueError, match="outside"):
            wire.error(-1, 2104, "x", version=bad)


@pytest.mark.parametrize("version", VERSIONS)
def test_session_messages_and_errors(version: int, caplog: pytest.LogCaptureFixture) -> None:
    data = (
        wire.next_valid_id(17)
        + wire.managed_accounts(["DU1234567"])
        + wire.current_time(1735732800)
        + wire.error(5, 201, "Order rejected - reason:x", "{}", version=version)
    )
    json = "{}" if version >= 166 else ""
    calls = ibapi_calls(data, version, caplog)
    assert calls[:3] == [
        ("nextValidId", (17,)),
        ("managedAccounts", ("DU1234567",)),
        ("currentTime", (1735732800,)),
    ]
    assert calls[3] == ("error", (5, 0, 201, "Order rejected - reason:x", json))
    assert ib_async_calls(data, version, caplog)[3] == ("error", (5, 201, "Order rejected - reason:x", json))


@pytest.mark.parametrize("version", VERSIONS)
def test_contract_details(version: int, caplog: pytest.LogCaptureFixture) -> None:
    data = wire.contract_details(3, AAPL, version=version) + wire.contract_details_end(3)
    (name, (req_id, cd)), end = ibapi_calls(data, version, caplog)
    assert (name, req_id, end) == ("contractDetails", 3, ("contractDetailsEnd", (3,)))
    c = cd.contract
    assert (c.conId, c.symbol, c.exchange, c.primaryExchange, c.currency) == (
        265598,
        "AAPL",
        "SMART",
        "NASDAQ",
        "USD",
    )
    assert (cd.minTick, cd.longName, cd.timeZoneId, cd.stockType) == (
        0.01,
        "APPLE INC",
        "US/Eastern",
        "COMMON",
    )
    assert "0930" in cd.liquidHours
    if version >= 164:
        assert (cd.minSize, cd.sizeIncrement, cd.suggestedSizeIncrement) == (1, 1, 100)
    (_, (_, acd)), _ = ib_async_calls(data, version, caplog)
    assert (acd.contract.conId, acd.minTick, acd.stockType, acd.timeZoneId) == (
        265598,
        0.01,
        "COMMON",
        "US/Eastern",
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_market_data(version: int, caplog: pytest.LogCaptureFixture) -> None:
    data = (
        wire.market_data_type(4, 1)
        + wire.tick_price(4, 1, 189.99, 300)
        + wire.tick_size(4, 8, 123456)
        + wire.tick_snapshot_end(4)
        + wire.realtime_bar(9, 1735828200, 190.0, 190.19, 189.81, 190.05, 100, 190.02, 7)
    )
    calls = ibapi_calls(data, version, caplog)
    assert calls[0] == ("marketDataType", (4, 1))
    assert calls[1][0] == "tickPrice" and calls[1][1][:3] == (4, 1, 189.99)
    assert calls[2:4] == [("tickSize", (4, 0, Decimal(300))), ("tickSize", (4, 8, Decimal(123456)))]
    assert calls[4] == ("tickSnapshotEnd", (4,))
    assert calls[5] == (
        "realtimeBar",
        (9, 1735828200, 190.0, 190.19, 189.81, 190.05, Decimal(100), Decimal("190.02"), 7),
    )
    assert [name for name, _ in ib_async_calls(data, version, caplog)] == [
        "marketDataType",
        "priceSizeTick",
        "tickSize",
        "tickSnapshotEnd",
        "realtimeBar",
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_history(version: int, caplog: pytest.LogCaptureFixture) -> None:
    rows: list[wire.BarRow] = [
        ("20250102 09:30:00 US/Eastern", 190.0, 191.0, 189.0, 190.5, 1000, 190.2, 10),
        ("20250102 09:35:00 US/Eastern", 190.5, 192.0, 190.1, 191.7, 1200, 191.1, 12),
    ]
    data = (
        wire.historical_data(4, "start", "end", rows)
        + wire.historical_data_update(4, rows[1])
        + wire.head_timestamp(8, "946909800")
    )
    calls = ibapi_calls(data, version, caplog)
    assert [name for name, _ in calls] == [
        "historicalData",
        "historicalData",
        "historicalDataEnd",
        "historicalDataUpdate",
        "headTimestamp",
    ]
    for (_, (req_id, bar)), row in zip(calls[:2], rows, strict=True):
        got = (bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.barCount)
        assert req_id == 4 and got == (*row[:5], Decimal(row[5]), Decimal(str(row[6])), row[7])
    assert calls[2] == ("historicalDataEnd", (4, "start", "end"))
    update = calls[3][1][1]
    assert (update.open, update.high, update.low, update.close, update.barCount) == (
        190.5,
        192.0,
        190.1,
        191.7,
        12,
    )
    assert calls[4] == ("headTimestamp", (8, "946909800"))
    assert len(ib_async_calls(data, version, caplog)) == 5


@pytest.mark.parametrize("version", VERSIONS)
def test_account_and_positions(version: int, caplog: pytest.LogCaptureFixture) -> None:
    data = (
        wire.account_value("NetLiquidation", "101881.50", "USD", "DU1234567")
        + wire.portfolio_value(AAPL, Decimal(10), 191.5, 1915.0, Decimal("180.0"), 115.0, 0.0, "DU1234567")
        + wire.account_time("14:30")
        + wire.account_download_end("DU1234567")
        + wire.position("DU1234567", SPY, Decimal(-5), Decimal("580.25"))
        + wire.position_end()
        + wire.account_summary(5, "DU1234567", "NetLiquidation", "1000000.00", "USD")
        + wire.account_summary_end(5)
        + wire.account_update_multi(6, "DU1234567", "TotalCashValue", "99.5", "USD")
        + wire.account_update_multi_end(6)
    )
    calls = ibapi_calls(data, version, caplog)
    assert calls[0] == ("updateAccountValue", ("NetLiquidation", "101881.50", "USD", "DU1234567"))
    name, (contract, *numbers, account) = calls[1]
    assert (name, contract.conId, contract.primaryExchange, account) == (
        "updatePortfolio",
        265598,
        "NASDAQ",
        "DU1234567",
    )
    assert numbers == [Decimal(10), 191.5, 1915.0, 180.0, 115.0, 0.0]
    assert calls[2:4] == [("updateAccountTime", ("14:30",)), ("accountDownloadEnd", ("DU1234567",))]
    name, (account, contract, qty, cost) = calls[4]
    assert (name, account, contract.symbol, contract.conId, qty, cost) == (
        "position",
        "DU1234567",
        "SPY",
        756733,
        Decimal(-5),
        580.25,
    )
    assert calls[5:] == [
        ("positionEnd", ()),
        ("accountSummary", (5, "DU1234567", "NetLiquidation", "1000000.00", "USD")),
        ("accountSummaryEnd", (5,)),
        ("accountUpdateMulti", (6, "DU1234567", "", "TotalCashValue", "99.5", "USD")),
        ("accountUpdateMultiEnd", (6,)),
    ]
    assert len(ib_async_calls(data, version, caplog)) == 10


@pytest.mark.parametrize("version", VERSIONS)
def test_open_order_and_status(version: int, caplog: pytest.LogCaptureFixture) -> None:
    data = (
        wire_orders.open_order(ORDER, AAPL, version=version)
        + wire_orders.order_status(ORDER)
        + wire.open_order_end()
    )
    (name, (oid, contract, order, state)), (status_name, status), end = ibapi_calls(data, version, caplog)
    assert (name, oid, contract.conId, contract.symbol, contract.tradingClass) == (
        "openOrder",
        11,
        265598,
        "AAPL",
        "NMS",
    )
    assert (order.orderId, order.clientId, order.permId, order.action, order.totalQuantity) == (
        11,
        7,
        1002,
        "BUY",
        Decimal(300),
    )
    assert (order.orderType, order.lmtPrice, order.orderRef, order.account, order.tif) == (
        "LMT",
        190.01,
        "cid-42",
        "DU1234567",
        "DAY",
    )
    assert (state.status, order.whatIf, order.ocaType, order.volatilityType) == ("Submitted", False, 3, 0)
    assert (status_name, status) == (
        "orderStatus",
        (11, "Submitted", Decimal(100), Decimal(200), 190.005, 1002, 0, 190.01, 7, "", 0.0),
    )
    assert end == ("openOrderEnd", ())
    (_, (a_oid, _, a_order, a_state)), *_ = ib_async_calls(data, version, caplog)
    assert (a_oid, a_order.orderRef, a_order.permId, a_state.status) == (11, "cid-42", 1002, "Submitted")


@pytest.mark.parametrize("version", VERSIONS)
def test_completed_order(version: int, caplog: pytest.LogCaptureFixture) -> None:
    done = replace(ORDER, status="Filled", filled=Decimal(300))
    data = wire_orders.completed_order(done, AAPL, "20250102 09:31:00 US/Eastern", version=version)
    data += wire.completed_orders_end()
    (name, (contract, order, state)), end = ibapi_calls(data, version, caplog)
    assert (name, contract.conId, order.permId, order.orderRef, order.totalQuantity, order.account) == (
        "completedOrder",
        265598,
        1002,
        "cid-42",
        Decimal(300),
        "DU1234567",
    )
    assert (state.status, state.completedStatus, order.filledQuantity) == ("Filled", "Filled", Decimal(300))
    assert state.completedTime == "20250102 09:31:00 US/Eastern" and end == ("completedOrdersEnd", ())
    (_, (_, a_order, a_state)), _ = ib_async_calls(data, version, caplog)
    assert (a_order.orderRef, a_state.completedStatus, a_order.filledQuantity) == ("cid-42", "Filled", 300.0)


@pytest.mark.parametrize("version", VERSIONS)
def test_execution_and_commission(version: int, caplog: pytest.LogCaptureFixture) -> None:
    data = (
        wire_orders.exec_details(-1, EXECUTION, AAPL, "20260102 10:00:00 US/Eastern", version=version)
        + wire.exec_details_end(3)
        + wire.commission_report(EXECUTION.exec_id, Decimal("1.00"), "USD", 12.5)
    )
    (name, (req_id, contract, ex)), end, (cname, (report,)) = ibapi_calls(data, version, caplog)
    assert (name, req_id, contract.conId, contract.exchange) == ("execDetails", -1, 265598, "NASDAQ")
    assert (ex.execId, ex.orderId, ex.permId, ex.clientId, ex.side, ex.shares, ex.price) == (
        EXECUTION.exec_id,
        11,
        1002,
        7,
        "BOT",
        Decimal(100),
        190.01,
    )
    assert (ex.orderRef, ex.cumQty, ex.avgPrice, ex.acctNumber, ex.time) == (
        "cid-42",
        Decimal(100),
        190.01,
        "DU1234567",
        "20260102 10:00:00 US/Eastern",
    )
    assert (ex.lastLiquidity, end) == (2, ("execDetailsEnd", (3,)))
    assert (cname, report.execId, report.commissionAndFees, report.currency, report.realizedPNL) == (
        "commissionAndFeesReport",
        EXECUTION.exec_id,
        1.0,
        "USD",
        12.5,
    )
    (_, (_, _, a_ex)), _, (_, (a_report,)) = ib_async_calls(data, version, caplog)
    assert (a_ex.execId, a_ex.orderRef, a_ex.shares, a_report.commission) == (
        EXECUTION.exec_id,
        "cid-42",
        100.0,
        1.0,
    )
