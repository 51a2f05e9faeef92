"""The bridge's request API (BridgeRequest over ROUTER): health, contract, history, place/cancel order, open
orders, executions, positions, account. Each handler checks its fields first and answers one clear line.

An adapter over the session. It must never place an order unless the Gateway is READY and not read-only (or, while
a market-data farm is down, unless the order only reduces the Gateway's position), never place two orders for one
client order id, and never let a bad request raise anything but RequestError.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from procs.bridge.farms import reduce_only_refusal
from procs.bridge.history import HistoryDesk
from procs.bridge.ib import BAR_SIZES
from procs.bridge.orders import DONE, OrderConflict, OrderInvalid, check_place_order, withheld_order
from procs.bridge.session import GatewaySession
from shared.bus import AnswerLater, RequestError
from shared.config import mask_account
from shared.log import event
from shared.messages import (
    AccountRequest,
    AccountValue,
    Bar,
    CancelOrder,
    ContractInfo,
    ContractRequest,
    ExecutionsRequest,
    Fill,
    HealthReport,
    HealthRequest,
    HistoryRequest,
    ModifyOrder,
    OpenOrdersRequest,
    OrderAck,
    OrderEvent,
    PlaceOrder,
    Position,
    PositionsRequest,
)

T = TypeVar("T")
_SYMBOL_RE = re.compile(r"[A-Z][A-Z0-9.]{0,9}")
GATEWAY_TIMEOUT = 10.0
QUEUE_TIMEOUT = 30.0  # longest a request waits for its turn in the paced outbox (a burst of 500 takes ~12 s)
MAX_DURATION_SECONDS = 10 * 365 * 86_400


class BridgeApi:
    """`await api.handle(request)` -> the reply's result, or RequestError with one line."""

    def __init__(self, session: GatewaySession) -> None:
        self.session = session
        self.history_desk = HistoryDesk(session, self._details, self._gateway)
        self._handlers: dict[type, Callable[[Any], Awaitable[Any]]] = {
            HealthRequest: self.health,
            ContractRequest: self.contract,
            HistoryRequest: self.history,
            PlaceOrder: self.place_order,
            CancelOrder: self.cancel_order,
            ModifyOrder: self.modify_order,
            OpenOrdersRequest: self.open_orders,
            ExecutionsRequest: self.executions,
            PositionsRequest: self.positions,
            AccountRequest: self.account,
        }

    async def handle(self, req: Any) -> Any:
        handler = self._handlers.get(type(req))
        if handler is None:
            raise RequestError(f"the bridge does not answer {type(req).__name__}")
        self.session.count(f"requests_{type(req).__name__}")
        return await handler(req)

    # ---------------------------------------------------------------- guards

    def _require_session(self) -> None:
        if not self.session.session_up:
            st = self.session.status()
            raise RequestError(f"not connected to the Gateway ({st.state}: {st.reason}); retry later")

    def _require_orders(self, req: PlaceOrder) -> None:
        s = self.session
        if s.settings.ib_readonly:
            raise RequestError("orders refused: IB_READONLY=true (set it to false to trade)")
        st = s.status()
        if st.state == "READY" and st.orders_allowed:
            return
        if not (st.reduce_only and st.orders_allowed):
            raise RequestError(f"orders refused while the Gateway is {st.state}: {st.reason}")
        if getattr(s.orders.get(req.client_order_id), "order_id", 0):
            return  # already at the Gateway: a retry places nothing new (its ack is answered)
        why = reduce_only_refusal(req.side, req.quantity, *s.broker.exposure(req))
        if why:
            raise RequestError(f"orders refused while the Gateway is {st.state} ({st.reason}): {why}")

    async def _gateway(
        self, key: Hashable, make: Callable[[], Awaitable[T]], timeout: float = GATEWAY_TIMEOUT
    ) -> T:
        """One paced Gateway request (shared with concurrent identical callers), errors as one line."""
        self._require_session()
        if not await self.session.outbox.room(QUEUE_TIMEOUT):
            raise RequestError("the bridge is busy pacing messages to the Gateway; retry shortly")
        try:
            return await self.session.requests.once(key, make, timeout)
        except TimeoutError:
            raise RequestError(f"the Gateway did not answer within {timeout:g} s") from None
        except ConnectionError:
            raise RequestError("the Gateway connection dropped during the request; retry") from None

    async def _details(self, symbol: str, field: str = "symbol") -> ContractInfo:
        if not _SYMBOL_RE.fullmatch(symbol):
            raise RequestError(f"{field} {symbol!r} is not a ticker (e.g. AAPL)")
        self._require_session()
        try:
            details = await self.session.broker.contract_details(symbol)
        except TimeoutError:
            raise RequestError(f"the Gateway did not answer the contract request for {symbol}") from None
        except ConnectionError:
            raise RequestError("the Gateway connection dropped during the request; retry") from None
        if details is None:
            raise RequestError(f"{field} {symbol!r}: the Gateway knows no US stock by that name")
        return details

    # ---------------------------------------------------------------- handlers

    async def health(self, req: HealthRequest | None = None) -> HealthReport:
        s = self.session
        st = s.status()
        now = time.monotonic()
        bar_at = s.subs.last_data("bars")
        counters = dict(s.counters)
        counters.update(
            outbox_sent=s.outbox.sent,
            outbox_backlog=s.outbox.backlog,
            outbox_waits=s.outbox.waits,  # times the pacer held messages back (a metric of the monitor)
            outbox_max_backlog=s.outbox.max_backlog,
            outbox_dropped=s.outbox.dropped,
            history_requests_10min=self.history_desk.pacer.used(now),
            order_duplicates=s.orders.duplicates,
            orders_replaced_after_103=s.broker.orders_replaced,
            order_statuses_put_back=s.broker.statuses_put_back,
            resubscriptions=s.subs.reissues,
        )
        return HealthReport(
            program="bridge",
            state=st.state,
            reason=st.reason,
            remedy=st.remedy,
            server_version=s.server_version,
            client_id=s.settings.ib_client_id,
            accounts=[mask_account(a) for a in s.accounts],
            heartbeat_rtt_ms=s.rtt_ms,
            last_heartbeat_age_s=None if s.last_heartbeat is None else round(now - s.last_heartbeat, 3),
            last_bar_age_s=None if bar_at is None else round(now - bar_at, 3),
            subscriptions=s.subs.live_count(s.generation) if s.session_up else 0,
            connected_since_ns=s.connected_since_ns if s.session_up else 0,
            reconnects=s.reconnects,
            gateway_time_ns=s.gateway_time_ns,
            counters=counters,
        )

    async def contract(self, req: ContractRequest) -> ContractInfo:
        return await self._details(req.symbol)

    async def history(self, req: HistoryRequest) -> list[Bar]:
        if req.bar_seconds not in BAR_SIZES:
            sizes = ", ".join(str(k) for k in BAR_SIZES)
            raise RequestError(
                f"bar_seconds {req.bar_seconds} is not a bar size IB serves; use one of {sizes}"
            )
        if not 0 < req.duration_seconds <= MAX_DURATION_SECONDS:
            raise RequestError(
                f"duration_seconds must be between 1 and {MAX_DURATION_SECONDS} (got {req.duration_seconds})"
            )
        if req.end_ns < 0:
            raise RequestError(f"end_ns must be 0 (now) or a UTC time in ns (got {req.end_ns})")
        return await self.history_desk.bars(req)

    def answer_now(self, req: Any) -> Any:
        """The quick path (RequestServer's `quick`): a PlaceOrder whose contract is known and for which the outbox
        has room is placed without waiting, even from between two of the Gateway's messages; anything else is
        AnswerLater, for `handle`."""
        if not isinstance(req, PlaceOrder):
            raise AnswerLater
        details = self.session.broker.known_details(req.symbol)
        if details is None or not self.session.outbox.has_room(order=True):
            raise AnswerLater
        self.session.count("requests_PlaceOrder")
        ack = self._claim(req)
        if ack is not None:
            return ack
        try:
            return self._place(req, details)
        except BaseException:
            self.session.orders.release(req.client_order_id)
            raise

    async def place_order(self, req: PlaceOrder) -> OrderAck:
        ack = self._claim(req)
        if ack is not None:
            return ack
        try:
            details = await self._details(req.symbol)
            if not await self.session.outbox.room(QUEUE_TIMEOUT, order=True):
                raise RequestError("the bridge is busy pacing messages to the Gateway; retry shortly")
            return self._place(req, details)
        except BaseException:
            # a cancel asked meanwhile keeps the id taken, CANCELLED
            self.session.orders.release(req.client_order_id)
            raise

    def _claim(self, req: PlaceOrder) -> OrderAck | None:
        """Check the order and take its client order id (before any await: a concurrent retry must see it taken);
        the ack of the order already placed under that id when this is a retry."""
        try:
            check_place_order(req)
        except OrderInvalid as exc:
            raise RequestError(str(exc)) from None
        self._require_orders(req)
        try:
            claim = self.session.orders.claim(req)
        except OrderConflict as exc:
            raise RequestError(str(exc)) from None
        if claim.new:
            return None
        rec = claim.record
        return OrderAck(
            client_order_id=rec.client_order_id, order_id=rec.order_id, status=rec.status, duplicate=True
        )

    def _place(self, req: PlaceOrder, details: ContractInfo) -> OrderAck:
        """Send a claimed order to the Gateway (synchronous: the broker queues it in the paced outbox)."""
        try:
            check_place_order(req, details.min_tick or None)
        except OrderInvalid as exc:
            raise RequestError(str(exc)) from None
        s = self.session
        record = s.orders.get(req.client_order_id)
        if record is not None and record.cancel_asked:
            # the cancel came while this placement waited (contract details, pacing room): the order is not sent
            # at all, rather than sent and cancelled a moment later (it could fill in between)
            self._withheld(req)
            raise RequestError(
                f"client_order_id {req.client_order_id!r} was cancelled before it was sent; nothing was placed"
            )
        self._require_orders(req)  # the state may have changed while we waited
        try:
            order_id = s.broker.place(req)
        except ConnectionError:
            raise RequestError(
                "the Gateway connection dropped; retry with the same client_order_id"
            ) from None
        except OSError as exc:
            raise RequestError(
                f"the bridge cannot record the order id on disk ({exc}); nothing was sent"
            ) from None
        s.orders.sent(req.client_order_id, order_id, s.generation)
        s.count("orders_placed")
        event(
            "order_placed",
            client_order_id=req.client_order_id,
            order_id=order_id,
            symbol=req.symbol,
            side=req.side,
            quantity=req.quantity,
            order_type=req.order_type,
            limit_price=req.limit_price,
        )
        return OrderAck(client_order_id=req.client_order_id, order_id=order_id, status="NEW")

    def _withheld(self, req: PlaceOrder) -> None:
        self.session.orders.withheld(req.client_order_id)
        event(
            "order_withheld", client_order_id=req.client_order_id, symbol=req.symbol, why="cancel before send"
        )
        self.session.listener.order_event(withheld_order(req))

    async def cancel_order(self, req: CancelOrder) -> OrderAck:
        if self.session.settings.ib_readonly:
            raise RequestError("cancels refused: IB_READONLY=true")
        cid = req.client_order_id
        orders = self.session.orders
        if orders.ask_cancel(cid):
            # claimed but still being placed: that placement is withheld (checked synchronously right before the
            # send), so nothing reaches the Gateway
            event("cancel_before_send", client_order_id=cid)
            return OrderAck(client_order_id=cid, order_id=0, status="CANCELLED")
        record = orders.get(cid)
        if record is None:
            raise RequestError(f"client_order_id {cid!r} is not an order the bridge has seen")
        if record.cancel_asked and not record.order_id:
            return OrderAck(client_order_id=cid, order_id=0, status="CANCELLED", duplicate=True)
        self._require_session()
        live = self.session.broker.live_order(cid, record.order_id)
        if live is None:
            raise RequestError(f"client_order_id {cid!r} is not an order the Gateway holds")
        ev = live.event
        if ev.status in DONE and ev.confirmed:
            return OrderAck(
                client_order_id=ev.client_order_id, order_id=ev.order_id, status=ev.status, duplicate=True
            )
        # a final status ib_async invented (10349, 161...) is no reason not to cancel: the Gateway may hold it
        try:
            self.session.broker.cancel(live)
        except ConnectionError:
            raise RequestError("the Gateway connection dropped; retry the cancel") from None
        event("cancel_sent", client_order_id=ev.client_order_id, order_id=ev.order_id, symbol=ev.symbol)
        return OrderAck(client_order_id=ev.client_order_id, order_id=ev.order_id, status="PENDING_CANCEL")

    async def modify_order(self, req: ModifyOrder) -> OrderAck:
        """IB's modify: the working order placed again under its own order id with the new size (a protective
        stop following its position); never a second order."""
        s = self.session
        if s.settings.ib_readonly:
            raise RequestError("modifies refused: IB_READONLY=true")
        if not req.quantity.is_finite() or req.quantity <= 0:
            raise RequestError(f"quantity must be a positive number of shares (got {req.quantity})")
        cid = req.client_order_id
        record = s.orders.get(cid)
        if record is None or not record.order_id:
            raise RequestError(f"client_order_id {cid!r} is not an order the Gateway holds")
        self._require_session()
        live = s.broker.live_order(cid, record.order_id)
        if live is None:
            raise RequestError(f"client_order_id {cid!r} is not an order the Gateway holds")
        ev = live.event
        if ev.status in DONE and ev.confirmed:
            raise RequestError(f"client_order_id {cid!r} is {ev.status}: nothing to modify")
        try:
            order_id = s.broker.modify(live, req.quantity)
        except ConnectionError:
            raise RequestError("the Gateway connection dropped; retry the modify") from None
        s.orders.resized(cid, req.quantity)
        event("order_modified", client_order_id=cid, order_id=order_id, quantity=req.quantity)
        return OrderAck(client_order_id=cid, order_id=order_id, status=ev.status)

    async def open_orders(self, req: OpenOrdersRequest) -> list[OrderEvent]:
        """Exactly the orders the Gateway listed in its answer, each in the state it gave there (an order ib_async
        had marked Cancelled on its own comes back working when the Gateway lists it so)."""
        return await self._gateway("open_orders", self.session.broker.open_orders)

    async def executions(self, req: ExecutionsRequest) -> list[Fill]:
        fills = await self._gateway("executions", self.session.broker.executions)
        return [f for f in fills if f.exec_ns >= req.since_ns]

    async def positions(self, req: PositionsRequest) -> list[Position]:
        return await self._gateway("positions", self.session.broker.positions)

    async def account(self, req: AccountRequest) -> list[AccountValue]:
        values = self.session.broker.account_values()
        if not values:
            self._require_session()
        return values
