"""The bridge's one ib_async client: it owns the IB object, connects and disconnects it, listens to its events and
turns everything at the boundary into the stack's messages (shared.messages) or the small views of this package.

The rest of the bridge asks through these methods and hears through the `on_*` callbacks, in project types only.
It must never block or raise into ib_async's event dispatch, and never convert on the hot path more than the one
message each Gateway event becomes (bars, quotes, order events and fills are converted exactly once, here).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ib_async import IB, Contract

from procs.bridge.ib import convert
from procs.bridge.ib.placing import Placer
from procs.bridge.ib.sync import startup_sync
from procs.bridge.ib.wire import orders_between_messages, quiet_ib_async, send_through, writer
from procs.bridge.ib.word import GatewayWord
from procs.bridge.order_ids import OrderIdStore
from procs.bridge.orders import OrderRegistry
from procs.bridge.requests import GatewayRequests
from shared.messages import AccountValue, Bar, ContractInfo, Fill, OrderEvent, PlaceOrder, Position, Quote

DETAILS_MAX_AGE = 3600.0  # con ids never change; trading hours change daily
MAX_KEPT_BARS = 64  # ib_async appends every bar to its list forever; we publish and forget
BAR_SIZES = convert.BAR_SIZES


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """An order the Gateway holds: its state as an OrderEvent, and the adapter's own handle to act on it."""

    event: OrderEvent
    handle: object = field(repr=False, compare=False)


def _ignore(*_: object) -> None:
    return None


async def _as_ns(asked: Awaitable[datetime]) -> int:
    return int((await asked).timestamp()) * 10**9


class IbBroker:
    """Owns the ib_async IB object for the life of the process (one socket at a time, the same client id)."""

    def __init__(
        self,
        account: str,
        orders: OrderRegistry,
        ids: OrderIdStore,
        generation: Callable[[], int],
        requests: GatewayRequests,
    ) -> None:
        ib = self._ib = IB()
        self._account = account
        self._requests = requests
        self._details: dict[
            str, tuple[float, Contract, ContractInfo]
        ] = {}  # symbol -> (when, contract, info)
        self.write: Callable[[str], None] = writer(ib)  # one encoded message onto the socket (the outbox's)
        self._placer = Placer(ib, orders, ids, generation)
        self._word = GatewayWord(ib)
        self._word.changed = self._on_trade  # the Gateway's word put back: the order is announced again
        self._word.duplicate_id = self._placer.on_duplicate_id
        # what the bridge hears, in its own types; the session and its listener set these
        self.on_order: Callable[[OrderEvent], None] = _ignore
        self.on_fill: Callable[[Fill], None] = _ignore
        self.on_position: Callable[[Position], None] = _ignore
        self.on_account_value: Callable[[AccountValue], None] = _ignore
        self.on_quote: Callable[[str, Quote | None], None] = _ignore
        self.on_error: Callable[[int, int, str], None] = _ignore  # request id, code, message
        self.on_disconnected: Callable[[], None] = _ignore
        self.on_api_error: Callable[[str], None] = _ignore
        quiet_ib_async()
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected
        ib.client.apiError += self._on_api_error
        ib.orderStatusEvent += self._on_trade
        ib.openOrderEvent += self._on_trade
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        ib.positionEvent += self._on_position
        ib.accountValueEvent += self._on_account_value
        ib.pendingTickersEvent += self._on_tickers

    # ------------------------------------------------------------------ the socket

    def send_through(self, send: Callable[[str | None], None]) -> None:
        """Route every encoded request through `send` (the paced outbox, which writes with `self.write`)."""
        send_through(self._ib, send)

    def look_between_messages(self, take_waiting: Callable[[], object]) -> None:
        """Call `take_waiting` between two decoded Gateway messages (wire.orders_between_messages)."""
        orders_between_messages(self._ib, take_waiting)

    async def connect(self, host: str, port: int, client_id: int, timeout: float) -> None:
        """Open the socket and the API handshake (raises however a connect can fail)."""
        await self._ib.client.connectAsync(host, port, client_id, timeout)  # type: ignore[no-untyped-call]
        self._ib.wrapper.clientId = client_id

    def disconnect(self) -> None:
        if self._ib.client.isConnected():  # type: ignore[no-untyped-call]
            self._ib.disconnect()

    def is_ready(self) -> bool:
        return bool(self._ib.client.isReady())

    @property
    def client_id(self) -> int:
        return int(self._ib.client.clientId)

    def server_version(self) -> int:
        return int(self._ib.client.serverVersion())

    def accounts(self) -> list[str]:
        return list(self._ib.client.getAccounts())

    def gateway_time_ns(self) -> asyncio.Future[int]:
        """The Gateway's clock (reqCurrentTime, the heartbeat); ConnectionError now when the socket is gone."""
        return asyncio.ensure_future(_as_ns(self._ib.reqCurrentTimeAsync()))

    async def sync(self, timeout: float, *, with_orders: bool, with_account: bool) -> list[str]:
        """The startup sync; the parts that failed, one line each."""
        return await startup_sync(
            self._ib, self._account, timeout, with_orders=with_orders, with_account=with_account
        )

    def new_session(self) -> None:
        """A new socket: ib_async forgets the old session's trades, and so does the Gateway's word."""
        self._word.clear()

    # ------------------------------------------------------------------ orders

    def start_ids_above(self) -> None:
        """Order ids go above every id the Gateway showed or this data directory used (placing.Placer)."""
        self._placer.start_above()

    def place(self, req: PlaceOrder) -> int:
        """Send a new order under a fresh id (its contract details known); ConnectionError, or OSError when the id
        cannot be recorded."""
        contract = self._details[req.symbol][1]
        trade = self._placer.place(contract, convert.ib_order(req, self._account))
        return int(trade.order.orderId)

    def live_order(self, client_order_id: str, order_id: int) -> BrokerOrder | None:
        trade = self._placer.live_trade(client_order_id, order_id)
        if trade is None:
            return None
        return BrokerOrder(convert.order_event(trade, self._word.status_of(trade)), trade)

    def cancel(self, order: BrokerOrder) -> None:
        self._ib.cancelOrder(order.handle.order)  # type: ignore[attr-defined]

    def modify(self, order: BrokerOrder, quantity: Decimal) -> int:
        """IB's modify: the order placed again under its own id with the new size; its order id."""
        trade: Any = order.handle
        trade.order.totalQuantity = float(quantity)
        self._ib.placeOrder(trade.contract, trade.order)
        return int(trade.order.orderId)

    def orders(self) -> list[OrderEvent]:
        """Every order ib_async holds for this session, in its state."""
        status_of = self._word.status_of
        return [convert.order_event(t, status_of(t)) for t in self._ib.trades()]

    def fills(self) -> list[Fill]:
        return [convert.fill(f) for f in self._ib.fills()]

    def exposure(self, req: PlaceOrder) -> tuple[Decimal, Decimal, str]:
        """(the Gateway's stock position in the order's symbol, shares of its working orders on the order's side,
        the symbol), from ib_async's copy of what the Gateway said (no request is sent)."""
        position = Decimal(0)
        for p in self._ib.positions(self._account):
            c = p.contract
            if c.symbol == req.symbol and c.secType == "STK":
                position += Decimal(str(p.position))
        pending = Decimal(0)
        for t in self._ib.openTrades():
            c, o = t.contract, t.order
            if c.symbol == req.symbol and c.secType == "STK" and o.action == req.side:
                pending += Decimal(str(t.remaining()))
        return position, pending, req.symbol

    @property
    def orders_replaced(self) -> int:
        return self._placer.replaced

    @property
    def statuses_put_back(self) -> int:
        return self._word.corrected

    # ------------------------------------------------------------------ requests (each answer converted once)

    async def open_orders(self) -> list[OrderEvent]:
        """Exactly the orders the Gateway listed in its answer, each in the state it gave there."""
        trades = await self._ib.reqAllOpenOrdersAsync()
        listed: dict[int, Any] = {}
        for t in trades:  # one openOrder per order, but a repeat must not list it twice
            listed.setdefault(id(t), t)
        status_of = self._word.status_of
        return [convert.order_event(t, status_of(t), as_listed=True) for t in listed.values()]

    async def executions(self) -> list[Fill]:
        """Today's executions, each with its commission report when one came."""
        fills = await self._ib.reqExecutionsAsync()
        reports = {f.execution.execId: f for f in self._ib.fills() if f.commissionReport.execId}
        return [convert.fill(reports.get(f.execution.execId, f)) for f in fills]

    async def positions(self) -> list[Position]:
        positions = await self._ib.reqPositionsAsync()
        return [convert.position(p) for p in positions if p.account == self._account]

    def account_values(self) -> list[AccountValue]:
        return [convert.account_value(v) for v in self._ib.accountValues(self._account)]

    def known_details(self, symbol: str) -> ContractInfo | None:
        """The cached details of a stock, or None when they must be asked for (unknown or an hour old)."""
        cached = self._details.get(symbol)
        if cached is not None and time.monotonic() - cached[0] < DETAILS_MAX_AGE:
            return cached[2]
        return None

    async def contract_details(self, symbol: str) -> ContractInfo | None:
        """The Gateway's details of a US stock, cached for an hour; None when it knows no such stock."""
        known = self.known_details(symbol)
        if known is not None:
            return known
        found = await self._requests.once(
            ("details", symbol), lambda: self._ib.reqContractDetailsAsync(convert.stock(symbol))
        )
        chosen = next((d for d in found if d.contract and d.contract.secType == "STK"), None)
        if chosen is None or chosen.contract is None:
            return None
        chosen.contract.exchange = "SMART"  # route through SMART, whatever the primary exchange is
        info = convert.contract_info(chosen)
        self._details[symbol] = (time.monotonic(), chosen.contract, info)
        return info

    async def history(
        self, symbol: str, bar_seconds: int, duration_seconds: int, end_ns: int, use_rth: bool, timeout: float
    ) -> list[Bar]:
        """Historical TRADES bars of a stock whose details are known (BAR_SIZES says which lengths IB serves)."""
        end = datetime.fromtimestamp(end_ns / 1e9, tz=UTC) if end_ns else ""
        raw = await self._ib.reqHistoricalDataAsync(
            self._details[symbol][1],
            end,
            convert.duration_string(duration_seconds),
            BAR_SIZES[bar_seconds],
            "TRADES",
            use_rth,
            formatDate=2,
            timeout=timeout,
        )
        return [convert.history_bar(symbol, b, bar_seconds) for b in raw or []]

    # ------------------------------------------------------------------ market data

    def subscribe_quotes(self, symbol: str) -> object:
        """Stream the top of book of a stock whose details are known; the subscription's handle."""
        return self._ib.reqMktData(self._details[symbol][1], "", False, False)

    def subscribe_bars(
        self, symbol: str, bar_seconds: int, what_to_show: str, on_bar: Callable[[object, Bar], None]
    ) -> object:
        """Stream real-time bars; each new bar goes to `on_bar(handle, bar)`. The subscription's handle."""
        contract = self._details[symbol][1]
        bars = self._ib.reqRealTimeBars(contract, bar_seconds, what_to_show, False)

        def on_update(bars_: Any, has_new: bool) -> None:
            if not has_new:
                return
            on_bar(bars_, convert.realtime_bar(symbol, bars_[-1], bar_seconds))
            if len(bars_) > MAX_KEPT_BARS:
                del bars_[:-1]

        bars.updateEvent += on_update
        return bars

    def drop_subscription(self, kind: str, handle: object, *, tell_gateway: bool) -> None:
        """End a subscription; after 1101 the Gateway forgot it already (`tell_gateway=False`)."""
        ib: Any = self._ib
        if kind == "bars":
            if tell_gateway:
                ib.cancelRealTimeBars(handle)
            else:
                ib.wrapper.endSubscription(handle)
        elif tell_gateway:
            ib.cancelMktData(handle.contract)  # type: ignore[attr-defined]
        else:
            ib.wrapper.endTicker(handle, "mktData")

    def resubscribe_account(self) -> None:
        self._ib.client.reqAccountUpdates(True, self._account)  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------ ib_async events, converted once

    def _on_error(self, req_id: int, code: int, text: str, contract: Any) -> None:
        self.on_error(req_id, code, text)

    def _on_disconnected(self) -> None:
        self.on_disconnected()

    def _on_api_error(self, msg: str) -> None:
        self.on_api_error(msg)

    def _on_trade(self, trade: Any) -> None:
        self.on_order(convert.order_event(trade, self._word.status_of(trade)))

    def _on_exec(self, trade: Any, fill: Any) -> None:
        self.on_fill(convert.fill(fill))

    def _on_commission(self, trade: Any, fill: Any, report: Any) -> None:
        self.on_fill(convert.fill(fill))

    def _on_position(self, position: Any) -> None:
        if position.account == self._account:
            self.on_position(convert.position(position))

    def _on_account_value(self, value: Any) -> None:
        if value.account == self._account:
            self.on_account_value(convert.account_value(value))

    def _on_tickers(self, tickers: Any) -> None:
        for ticker in tickers:
            self.on_quote(ticker.contract.symbol, convert.quote(ticker))
