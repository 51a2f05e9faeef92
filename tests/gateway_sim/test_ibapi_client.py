"""IB's own Python client (ibapi's EClient/EWrapper, its reader thread and message loop) against the real simulator
over loopback TCP: once at the client's natural maximum (the simulator answers 178) and once announcing at most 157,
the lowest version the simulator accepts (as an old client does), so every version-dependent layout is read by
IB's own decoder in its older form too.

Each run fails if ibapi's message loop raises, if ibapi logs a warning or error (a field count mismatch, an unhandled
exception in its reader), if it reports any error other than the Gateway's farm notices (505 unknown message, 507/508
bad length/message included), or if a value arrives wrong.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from ibapi import client as ibapi_client
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.execution import ExecutionFilter
from ibapi.order import Order
from ibapi.wrapper import EWrapper

from procs.gateway_sim import wire
from procs.gateway_sim.inprocess import GatewaySim
from tests.support.stack import wait_for

pytestmark = pytest.mark.timeout(90)

ACCOUNT = "DU1234567"
FARM_NOTICES = range(2100, 2200)  # "market data farm connection is OK" and friends: notices, not errors
WAIT = 20.0


class Recorder(EWrapper):  # type: ignore[misc]
    """IB's EWrapper with every callback recorded (name, args), from ibapi's message-loop thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattribute__(self, name: str) -> Any:
        if (
            not name.startswith("_")
            and name not in ("calls", "of")
            and callable(getattr(EWrapper, name, None))
        ):
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append((name, args))
        return object.__getattribute__(self, name)

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [args for called, args in list(self.calls) if called == name]


class IbapiLog(logging.Handler):
    """Warnings and errors that ibapi logs (its decoder logs a field-count mismatch instead of raising)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


class IbapiSession:
    """EClient connected to the simulator, its message loop in a thread, and everything that went wrong."""

    def __init__(self, port: int, client_id: int) -> None:
        self.wrapper = Recorder()
        self.client = EClient(self.wrapper)
        self.loop_failure: list[BaseException] = []
        self.client.connect("127.0.0.1", port, client_id)
        assert self.client.isConnected(), self.wrapper.calls
        self.thread = threading.Thread(target=self._run, name="ibapi-message-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.client.run()
        except BaseException as exc:  # the message loop must never raise: the test reports it
            self.loop_failure.append(exc)

    def close(self) -> None:
        self.client.disconnect()
        self.thread.join(10)
        reader = getattr(self.client, "reader", None)
        if reader is not None:
            reader.join(10)

    def errors(self) -> list[tuple[Any, ...]]:
        return [args for args in self.wrapper.of("error") if args[2] not in FARM_NOTICES]

    def wait(self, what: str, name: str, count: int = 1) -> list[tuple[Any, ...]]:
        def arrived() -> list[tuple[Any, ...]] | None:
            if self.loop_failure or self.errors():
                return [("failed",)]  # stop waiting: reported below
            got = self.wrapper.of(name)
            return got if len(got) >= count else None

        result: list[tuple[Any, ...]] = wait_for(what, arrived, WAIT, 0.02)
        assert not self.loop_failure, (
            f"ibapi's message loop raised while waiting for {what}: {self.loop_failure}"
        )
        assert not self.errors(), f"ibapi reported errors while waiting for {what}: {self.errors()}"
        return result


def stock(symbol: str) -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = symbol, "STK", "SMART", "USD"
    return c


def order(action: str, qty: int, order_type: str, ref: str, limit: float | None = None) -> Order:
    o = Order()
    o.action, o.totalQuantity, o.orderType, o.orderRef, o.tif = action, Decimal(qty), order_type, ref, "DAY"
    if limit is not None:
        o.lmtPrice = limit
    return o


@pytest.fixture
def ibapi_log() -> Iterator[IbapiLog]:
    handler = IbapiLog()
    logger = logging.getLogger("ibapi")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("client_max", [None, wire.MIN_CLIENT_VERSION], ids=["natural-max", "v157"])
def test_ibapi_client_trades_and_reads_everything_at_the_negotiated_version(
    client_max: int | None, ibapi_log: IbapiLog, sim: GatewaySim, monkeypatch: pytest.MonkeyPatch
) -> None:
    if client_max is not None:
        # ibapi announces "v100..MAX_CLIENT_VER", read from its module when connecting: an older client's range
        monkeypatch.setattr(ibapi_client, "MAX_CLIENT_VER", client_max)
    expected_version = min(client_max or ibapi_client.MAX_CLIENT_VER, wire.SERVER_VERSION)
    session = IbapiSession(sim.port, client_id=7)
    try:
        app, rec = session.client, session.wrapper
        assert app.serverVersion() == expected_version
        [(next_id,)] = session.wait("nextValidId", "nextValidId")
        assert session.wait("managedAccounts", "managedAccounts") == [(ACCOUNT,)]
        [described] = sim.status()["sessions"]
        assert (described["client_id"], described["server_version"]) == (7, expected_version)

        app.reqContractDetails(1, stock("AAPL"))
        session.wait("contractDetailsEnd", "contractDetailsEnd")
        [(req_id, details)] = rec.of("contractDetails")
        aapl = details.contract
        assert (req_id, aapl.conId, aapl.primaryExchange, aapl.tradingClass) == (1, 265598, "NASDAQ", "NMS")
        assert (
            details.minTick == 0.01 and details.timeZoneId == "US/Eastern" and details.stockType == "COMMON"
        )

        app.reqHistoricalData(2, stock("AAPL"), "", "1800 S", "5 mins", "TRADES", 0, 1, False, [])
        [(end_req, start, end)] = session.wait("historicalDataEnd", "historicalDataEnd")
        bars = [bar for req, bar in rec.of("historicalData") if req == 2]
        assert end_req == 2 and 5 <= len(bars) <= 7 and start < end  # the last bar may be in progress
        assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)
        assert all(b.volume > 0 and b.barCount > 0 and b.low <= b.wap <= b.high for b in bars)

        # a market order that fills at once
        ref = f"ibapi-{expected_version}-mkt"
        app.placeOrder(next_id, aapl, order("BUY", 100, "MKT", ref))
        [(commission,)] = session.wait("the fill's commission report", "commissionAndFeesReport")
        [(oid, contract, placed, state), *_] = rec.of("openOrder")
        assert (oid, contract.conId, placed.orderRef, placed.totalQuantity, placed.orderType) == (
            next_id,
            265598,
            ref,
            Decimal(100),
            "MKT",
        )
        assert (placed.permId > 0, placed.clientId, placed.account, state.status) == (
            True,
            7,
            ACCOUNT,
            "Submitted",
        )
        filled = [s for s in rec.of("orderStatus") if s[0] == next_id and s[1] == "Filled"]
        assert filled and filled[-1][2:4] == (Decimal(100), Decimal(0)) and filled[-1][5] == placed.permId
        fill_price = filled[-1][4]
        [(exec_req, exec_contract, execution)] = rec.of("execDetails")
        assert (exec_req, execution.orderId, execution.orderRef, execution.shares, execution.price) == (
            -1,
            next_id,
            ref,
            Decimal(100),
            fill_price,
        )
        assert (exec_contract.conId, execution.side, execution.acctNumber, execution.permId) == (
            265598,
            "BOT",
            ACCOUNT,
            placed.permId,
        )
        assert (commission.execId, commission.currency) == (execution.execId, "USD")
        assert commission.commissionAndFees >= 1.0

        # a limit order far below the market stays working: it is what reqOpenOrders returns
        working_ref = f"ibapi-{expected_version}-lmt"
        limit = round(bars[-1].close * 0.5, 2)
        app.placeOrder(next_id + 1, aapl, order("BUY", 10, "LMT", working_ref, limit))
        wait_for(
            "the LMT order's status", lambda: [s for s in rec.of("orderStatus") if s[0] == next_id + 1], WAIT
        )
        opened_before = len(rec.of("openOrder"))
        app.reqOpenOrders()
        session.wait("openOrderEnd", "openOrderEnd")
        listed = rec.of("openOrder")[opened_before:]
        assert [(o[0], o[2].orderRef, o[2].lmtPrice, o[2].totalQuantity, o[3].status) for o in listed] == [
            (next_id + 1, working_ref, limit, Decimal(10), "Submitted")
        ]

        app.reqCompletedOrders(False)
        session.wait("completedOrdersEnd", "completedOrdersEnd")
        [(done_contract, done, done_state)] = rec.of("completedOrder")
        assert (done_contract.conId, done.orderRef, done.permId, done.filledQuantity) == (
            265598,
            ref,
            placed.permId,
            Decimal(100),
        )
        assert (done_state.status, done_state.completedStatus) == ("Filled", "Filled")

        app.reqExecutions(3, ExecutionFilter())
        session.wait("execDetailsEnd", "execDetailsEnd")
        [(_, _, again)] = [e for e in rec.of("execDetails") if e[0] == 3]
        assert (again.execId, again.orderRef, again.shares, again.price) == (
            execution.execId,
            ref,
            Decimal(100),
            fill_price,
        )
        assert len(rec.of("commissionAndFeesReport")) == 2  # the report comes again with the execution

        app.reqPositions()
        session.wait("positionEnd", "positionEnd")
        [(account, held, quantity, avg_cost)] = rec.of("position")
        assert (account, held.conId, held.symbol, quantity) == (ACCOUNT, 265598, "AAPL", Decimal(100))
        assert avg_cost == pytest.approx(fill_price + commission.commissionAndFees / 100)
        app.cancelPositions()

        app.reqAccountUpdates(True, ACCOUNT)
        session.wait("accountDownloadEnd", "accountDownloadEnd")
        values = {key: value for key, value, _currency, _account in rec.of("updateAccountValue")}
        assert values["AccountCode"] == ACCOUNT and float(values["NetLiquidation"]) > 0
        [(folio_contract, folio_qty, market_price, market_value, *_rest, folio_account)] = rec.of(
            "updatePortfolio"
        )
        assert (folio_contract.conId, folio_qty, folio_account) == (265598, Decimal(100), ACCOUNT)
        assert market_value == pytest.approx(100 * market_price, abs=0.01)
        app.reqAccountUpdates(False, ACCOUNT)

        app.reqCurrentTime()
        [(epoch,)] = session.wait("currentTime", "currentTime")
        assert epoch > 1_000_000_000

        assert not session.loop_failure and not session.errors() and not ibapi_log.lines, ibapi_log.lines
    finally:
        session.close()
    assert not session.loop_failure, session.loop_failure
    assert not ibapi_log.lines, ibapi_log.lines
    assert {args[2] for args in rec.of("error")} <= set(FARM_NOTICES)


@pytest.mark.parametrize("client_max", [None, wire.MIN_CLIENT_VERSION], ids=["natural-max", "v157"])
def test_ibapi_client_reads_the_isin_tick_by_tick_depth_and_the_full_account_summary(
    client_max: int | None, ibapi_log: IbapiLog, sim: GatewaySim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The messages NautilusTrader needs (issue 20), read by IB's own decoder at both ends of the version range."""
    from ibapi.account_summary_tags import AccountSummaryTags

    if client_max is not None:
        monkeypatch.setattr(ibapi_client, "MAX_CLIENT_VER", client_max)
    session = IbapiSession(sim.port, client_id=8)
    try:
        app, rec = session.client, session.wrapper
        session.wait("nextValidId", "nextValidId")

        by_local = Contract()  # how NautilusTrader asks for AAPL.NASDAQ: localSymbol, no symbol
        by_local.secType, by_local.exchange, by_local.primaryExchange = "STK", "SMART", "NASDAQ"
        by_local.localSymbol = "AAPL"
        app.reqContractDetails(1, by_local)
        session.wait("contractDetailsEnd", "contractDetailsEnd")
        [(_, details)] = rec.of("contractDetails")
        assert details.contract.conId == 265598
        assert [(t.tag, t.value) for t in details.secIdList] == [("ISIN", "US0378331005")]

        app.reqTickByTickData(2, details.contract, "BidAsk", 0, False)
        app.reqTickByTickData(3, details.contract, "AllLast", 0, False)
        app.reqTickByTickData(4, details.contract, "MidPoint", 0, False)
        [(_, _, bid, ask, bid_size, ask_size, _)] = session.wait("a BidAsk tick", "tickByTickBidAsk")[:1]
        assert 0 < bid < ask and bid_size > 0 and ask_size > 0
        [(_, kind, _, price, size, _, exchange, _)] = session.wait("a trade tick", "tickByTickAllLast")[:1]
        assert (kind, price > 0, size > 0, bool(exchange)) == (2, True, True, True)
        [(_, _, mid)] = session.wait("a midpoint tick", "tickByTickMidPoint")[:1]
        assert 0 < mid
        app.cancelTickByTickData(2)

        app.reqMktDepth(5, details.contract, 3, True, [])
        rows = session.wait("three levels a side", "updateMktDepthL2", 6)
        bids = sorted((r[1], r[5]) for r in rows[:6] if r[4] == 1)
        asks = sorted((r[1], r[5]) for r in rows[:6] if r[4] == 0)
        assert [p for p, _ in bids] == [0, 1, 2] and [p for p, _ in asks] == [0, 1, 2]
        assert bids[0][1] > bids[1][1] > bids[2][1] and asks[0][1] < asks[1][1] < asks[2][1]
        assert bids[0][1] < asks[0][1] and all(r[7] is True for r in rows[:6])  # isSmartDepth
        app.cancelMktDepth(5, True)

        unknown = stock("ZZZZ")
        app.reqTickByTickData(6, unknown, "Last", 0, False)
        app.reqMktDepth(7, unknown, 3, False, [])
        wait_for("two errors 200", lambda: len([e for e in session.errors() if e[2] == 200]) == 2, WAIT)
        assert sorted(e[0] for e in session.errors()) == [6, 7]
        session.wrapper.calls[:] = [c for c in session.wrapper.calls if c[0] != "error"]

        app.reqAccountSummary(8, "All", AccountSummaryTags.AllTags)
        session.wait("accountSummaryEnd", "accountSummaryEnd")
        tags = {tag for _, _, tag, _, _ in rec.of("accountSummary")}
        assert tags == set(AccountSummaryTags.AllTags.split(","))
        assert not ibapi_log.lines, ibapi_log.lines
        assert app.isConnected()
    finally:
        session.close()
