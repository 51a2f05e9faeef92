"""Publishes what the Gateway session sees on the bridge's PUB socket: 5-second bars, quotes, order events,
fills (re-sent once with the commission), positions, account values, gateway state and alerts.

The session's listener: the broker's events (already the stack's messages) out through `publish`. It must never
block or raise into the event dispatch; subscribers dedupe fills by exec_id, so a re-publish is safe, a loss is
not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from decimal import Decimal

from procs.bridge.orders import OrderRecord
from procs.bridge.session import GatewaySession, Listener
from procs.bridge.states import Status
from procs.bridge.subscriptions import SubscriptionSpec
from shared.config import mask_account
from shared.log import event, log_every
from shared.messages import (
    AccountValue,
    Alert,
    Bar,
    Fill,
    GatewayStatus,
    Message,
    OrderEvent,
    Position,
    Quote,
)

Publish = Callable[[str, Message], None]
STATUS_EVERY = 5.0


class Streams(Listener):
    """The session's Listener: turns its events into published messages."""

    def __init__(self, session: GatewaySession, publish: Publish) -> None:
        self.session = session
        self._publish = publish
        self.published = 0
        self._order_seen: dict[tuple[int, int, str], tuple[str, str, Decimal, bool]] = {}
        self._fills: dict[str, bool] = {}  # exec_id -> published with its commission
        session.listener = self  # the broker's order, fill, position and account events come straight here

    def send(self, topic: str, msg: Message) -> None:
        try:
            self._publish(topic, msg)
            self.published += 1
        except Exception as exc:  # a publish failure must not break the broker's event dispatch
            log_every("stream.publish", 10, "WARNING", f"could not publish {topic}: {exc!r}")

    # ---------------------------------------------------------------- session listener

    def gateway_status(self, status: Status | None = None) -> GatewayStatus:
        st = status or self.session.status()
        s = self.session
        return GatewayStatus(
            state=st.state,
            reason=st.reason,
            remedy=st.remedy,
            orders_allowed=st.orders_allowed,
            data_degraded=st.data_degraded,
            server_version=s.server_version,
            client_id=s.settings.ib_client_id,
            accounts=[mask_account(a) for a in s.accounts],
            gateway_time_ns=s.gateway_time_ns,
        )

    def status_changed(self, status: Status) -> None:
        self.send("gateway", self.gateway_status(status))

    def alert(self, severity: str, code: str, message: str, remedy: str = "") -> None:
        self.send("alert", Alert(severity=severity, code=code, message=message, remedy=remedy))  # type: ignore[arg-type]

    def bar(self, spec: SubscriptionSpec, bar: Bar) -> None:
        self.send(f"bar.{spec.symbol}", bar)

    def quote(self, quote: Quote) -> None:
        self.send(f"quote.{quote.symbol}", quote)

    def synced(self, session: GatewaySession, lost_orders: list[OrderRecord]) -> None:
        """After a sync: publish what changed while we were away (fills, order states), and orders lost."""
        for ev in session.broker.orders():
            self.order(ev)
        for fill in session.broker.fills():
            self.fill(fill)
        for record in lost_orders:
            ev = OrderEvent(
                client_order_id=record.client_order_id,
                order_id=record.order_id,
                symbol=record.symbol,
                status="REJECTED",
                reason="never reached the Gateway (the connection was lost); safe to retry with the same id",
            )
            self.send("order.rejected", ev)

    # ---------------------------------------------------------------- the broker's events

    def order_event(self, ev: OrderEvent) -> None:
        """An order state the bridge itself knows for sure (a placement withheld on a cancel)."""
        self.send(f"order.{ev.status.lower()}", ev)

    def order(self, ev: OrderEvent) -> None:
        """The Gateway's word on an order (or its word put back on a status ib_async had invented)."""
        orders = self.session.orders
        if orders.replaced and ev.order_id in orders.replaced:
            return  # refused with 103 and placed again under a fresh id: this copy never was the order
        orders.seen(ev.client_order_id, ev.symbol, ev.order_id, ev.perm_id, ev.status)
        key = (ev.perm_id, ev.order_id, ev.client_order_id)
        state = (ev.status, ev.ib_status, ev.filled, ev.confirmed)
        if self._order_seen.get(key) == state:
            return
        self._order_seen[key] = state
        self.send(f"order.{ev.status.lower()}", ev)
        if not ev.confirmed:  # worth a line: the executor now asks the Gateway's open-order list
            event(
                "order_status_unconfirmed",
                "WARNING",
                client_order_id=ev.client_order_id,
                order_id=ev.order_id,
                status=ev.status,
                error_code=ev.error_code,
                reason=repr(ev.reason),
            )
        event(  # DEBUG: the executor logs every order state and fill at INFO; here they cost ~15% of a burst
            "order_status",
            "DEBUG",
            client_order_id=ev.client_order_id,
            order_id=ev.order_id,
            symbol=ev.symbol,
            status=ev.status,
            ib_status=ev.ib_status,
            filled=ev.filled,
            confirmed=ev.confirmed,
            reason=repr(ev.reason),
        )

    def fill(self, msg: Fill) -> None:
        """An execution, and again with its commission report (published once each way)."""
        with_commission = msg.commission is not None
        sent = self._fills.get(msg.exec_id)
        if sent is True or (sent is False and not with_commission):
            return
        self._fills[msg.exec_id] = with_commission
        self.send("fill", msg)
        if sent is None:
            event(
                "fill",
                "DEBUG",
                exec_id=msg.exec_id,
                client_order_id=msg.client_order_id,
                symbol=msg.symbol,
                side=msg.side,
                quantity=msg.quantity,
                price=msg.price,
            )

    def position(self, msg: Position) -> None:
        """A holding of the bridge's account (the broker reports no other)."""
        self.send("position", msg)
        event(
            "position",
            "DEBUG",
            symbol=msg.symbol,
            sec_type=msg.sec_type,
            con_id=msg.con_id,
            quantity=msg.quantity,
            avg_cost=msg.avg_cost,
        )

    def account_value(self, value: AccountValue) -> None:
        """An account value of the bridge's account (the broker reports no other)."""
        self.send("account", value)

    async def repeat_status(self, stop: asyncio.Event, every: float = STATUS_EVERY) -> None:
        """Re-send the gateway state every few seconds, for subscribers that joined late."""
        while not stop.is_set():
            self.send("gateway", self.gateway_status())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
