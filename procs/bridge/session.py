"""The one long-lived IB API session: connect, sync, hold it with reqCurrentTime heartbeats, and reconnect only
after its socket is really gone (one reconnect owner, capped backoff with jitter, always the same client id).

Drives the ib_async adapter (procs/bridge/ib: the socket, its events, in the stack's types) with the pure cores
(states, core, subscriptions, orders, pacing). It must never disconnect on an error path: the socket is closed
once, by close(), at orderly shutdown.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable
from typing import Any

from loguru import logger

from procs.bridge.core import (
    REASONS,
    REMEDIES,
    ConnectFailure,
    Failure,
    ReconnectPolicy,
    RetryDecision,
    failure_of,
)
from procs.bridge.feeds import Feeds
from procs.bridge.ib import IbBroker
from procs.bridge.order_ids import FILE_NAME, OrderIdStore
from procs.bridge.orders import OrderRecord, OrderRegistry
from procs.bridge.outbox import PacedOutbox
from procs.bridge.pacing import gateway_limiter, order_reserve
from procs.bridge.requests import REQUEST_TIMEOUT, GatewayRequests
from procs.bridge.states import (
    GatewayConditions,
    Phase,
    ReissueAll,
    ReissueStale,
    Status,
    Warn,
    identity_problem,
)
from procs.bridge.subscriptions import SubscriptionRegistry, SubscriptionSpec
from procs.bridge.sync import reconcile_orders
from procs.bridge.waits import cancel_and_wait, first_of
from shared.config import Settings
from shared.log import event, log_every
from shared.messages import AccountValue, Bar, Fill, OrderEvent, Position, Quote

SYNC_RETRY_SECONDS = 15.0
FLUSH_SECONDS = 2.0  # at an orderly stop, queued messages (orders, cancels) still go out first


class Listener:
    """What the session tells the stream publisher (stream.Streams); these defaults say nothing."""

    def status_changed(self, status: Status) -> None: ...
    def alert(self, severity: str, code: str, message: str, remedy: str = "") -> None: ...
    def bar(self, spec: SubscriptionSpec, bar: Bar) -> None: ...
    def quote(self, quote: Quote) -> None: ...
    def synced(self, session: GatewaySession, lost_orders: list[OrderRecord]) -> None: ...
    def order(self, ev: OrderEvent) -> None:
        """The Gateway's word on an order (a status, an openOrder, or its word put back on an invented one)."""

    def order_event(self, ev: OrderEvent) -> None:
        """An order state the bridge itself knows for sure (a placement withheld on a cancel)."""

    def fill(self, fill: Fill) -> None: ...
    def position(self, position: Position) -> None: ...
    def account_value(self, value: AccountValue) -> None: ...


class GatewaySession:
    """Holds the Gateway session for the life of the process (through `broker`, the ib_async adapter); `run()` is
    the one reconnect loop."""

    def __init__(
        self, settings: Settings, *, stable_seconds: float = 10.0, rng: random.Random | None = None
    ) -> None:
        s = self.settings = settings
        self.orders = OrderRegistry()
        self.order_ids = OrderIdStore(s.data_dir / FILE_NAME)
        self.requests = GatewayRequests()
        self.broker = IbBroker(
            s.ib_account, self.orders, self.order_ids, lambda: self.generation, self.requests
        )
        limiter = gateway_limiter(s.bridge_msgs_per_second)
        self.outbox = PacedOutbox(self.broker.write, limiter, reserve=order_reserve(limiter.limit))
        self.broker.send_through(self.outbox.send)
        self.conditions = GatewayConditions(readonly=s.ib_readonly)
        self.policy = ReconnectPolicy(
            cap=s.reconnect_backoff_max,
            max_failures=s.reconnect_max_failures,
            waiting_retry=s.waiting_retry_seconds,
            stable_seconds=stable_seconds,
            rng=rng or random.Random(),
        )
        self.subs = SubscriptionRegistry()
        for kind in ("bars", "quotes"):  # bars first: after a reconnect they are what the strategy waits for
            for symbol in s.symbols:
                self.subs.add(SubscriptionSpec(kind, symbol))
        self.listener = Listener()
        self.generation = 0
        self.reconnects = 0
        self.counters: dict[str, float] = {}
        self.connected_since_ns = 0
        self.server_version = 0
        self.accounts: list[str] = []
        self.rtt_ms: float | None = None
        self.last_heartbeat: float | None = None
        self.gateway_time_ns = 0
        self._status: Status | None = None
        self._lost = asyncio.Event()
        self._early: asyncio.Future[ConnectFailure] | None = None
        self._sync_due: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.broker.on_error = self._on_error
        self.broker.on_disconnected = self._on_disconnected
        self.broker.on_api_error = self._on_api_error
        self.feeds = Feeds(self)

    # ------------------------------------------------------------------ state

    @property
    def listener(self) -> Listener:
        return self._listener

    @listener.setter
    def listener(self, listener: Listener) -> None:
        """The broker's order, fill, position and account events go straight to the listener (no hop between)."""
        self._listener = listener
        b = self.broker
        b.on_order = listener.order
        b.on_fill = listener.fill
        b.on_position = listener.position
        b.on_account_value = listener.account_value

    def status(self) -> Status:
        return self.conditions.status()

    @property
    def session_up(self) -> bool:
        return self.conditions.phase is Phase.UP and not self._lost.is_set()

    def count(self, name: str, n: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _publish_status(self) -> None:
        st = self.conditions.status()
        if st == self._status:
            return
        before, self._status = self._status, st
        event("gateway_state", state=st.state, reason=st.reason, orders_allowed=st.orders_allowed)
        if st.state == "STALLED" and (before is None or before.state != "STALLED"):
            self.listener.alert("WARNING", "gateway.stalled", st.reason, st.remedy)
        self.listener.status_changed(st)

    # ------------------------------------------------------------------ the reconnect owner

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, hold the session until its socket is gone, back off, again; until `stop`."""
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                failure = await self._connect(stop)
                if stop.is_set():
                    break
                if failure is None:
                    up_at = loop.time()
                    await self._hold(stop)
                    if stop.is_set():
                        break
                    failure = ConnectFailure(Failure.LOST, "socket closed")
                    decision = self.policy.after_session_lost(loop.time() - up_at)
                else:
                    decision = self.policy.after_failure(failure.kind)
                self._backing_off(failure, decision)
                await first_of(stop, timeout=decision.delay)
        finally:
            if self.session_up:
                await self.outbox.flush(timeout=FLUSH_SECONDS)
            self.close()

    def _backing_off(self, failure: ConnectFailure, decision: RetryDecision) -> None:
        self.count(f"failures_{failure.kind.value}")
        event(
            "backoff",
            why=failure.kind.value,
            detail=failure.detail,
            failures=decision.failures,
            delay=round(decision.delay, 2),
        )
        why = REASONS[failure.kind]
        if decision.waiting:
            reason = (
                f"{decision.failures} connection attempts failed in a row (last: {why}); "
                f"retrying every {self.settings.waiting_retry_seconds:g} s"
            )
            self.conditions.set_phase(Phase.WAITING_FOR_HUMAN, reason, REMEDIES[failure.kind])
            if decision.alert:
                self.listener.alert("CRITICAL", "gateway.waiting_for_human", reason, REMEDIES[failure.kind])
        else:
            reason = f"{why}; retry {decision.failures} in {decision.delay:.1f} s"
            self.conditions.set_phase(Phase.DISCONNECTED, reason, REMEDIES[failure.kind])
        self._publish_status()

    async def _connect(self, stop: asyncio.Event) -> ConnectFailure | None:
        s = self.settings
        self.count("connect_attempts")
        self.outbox.clear()
        self.broker.new_session()
        self._lost.clear()
        self.conditions.new_session()
        where = f"{s.ib_host}:{s.ib_port} as client {s.ib_client_id}"
        self.conditions.set_phase(
            Phase.CONNECTING, f"connecting to {where} (attempt {self.policy.failures + 1})"
        )
        self._publish_status()
        self._early = asyncio.get_running_loop().create_future()
        attempt = asyncio.ensure_future(self._attempt())
        try:
            winner = await first_of(attempt, self._early, stop)
        finally:
            early, self._early = self._early, None
        if winner is attempt:
            return attempt.result()
        await cancel_and_wait(attempt)
        if early.done() and not early.cancelled():
            return early.result()
        return None

    async def _attempt(self) -> ConnectFailure | None:
        s, broker = self.settings, self.broker
        try:
            await broker.connect(s.ib_host, s.ib_port, s.ib_client_id, s.ib_connect_timeout)
        except Exception as exc:  # every way a connect can fail is a reason to back off, never to crash
            return failure_of(exc)
        self.generation += 1
        # raise-only: a rolled-back nextValidId cannot reuse an order id we (or an earlier bridge) already used
        broker.start_ids_above()
        self.server_version = broker.server_version()
        self.accounts = broker.accounts()
        self.conditions.set_phase(Phase.SYNCING, "API ready: loading positions, orders, executions, account")
        self._publish_status()
        problem, remedy = identity_problem(self.accounts, s.ib_account, s.trading_mode, s.ib_port)
        errors = await broker.sync(
            s.ib_connect_timeout, with_orders=not s.ib_readonly, with_account=not problem
        )
        if self._lost.is_set() or not broker.is_ready():
            return ConnectFailure(Failure.CLOSED_DURING_CONNECT, "the socket closed during the startup sync")
        self._became_ready(problem, remedy, errors)
        return None

    def _became_ready(self, problem: str, remedy: str, sync_errors: list[str]) -> None:
        c = self.conditions
        c.identity_problem, c.identity_remedy = problem, remedy
        c.sync_problem = f"startup sync incomplete: {'; '.join(sync_errors)}" if sync_errors else ""
        self._sync_due = time.monotonic() + SYNC_RETRY_SECONDS if sync_errors else None
        lost = self._reconcile(complete=not sync_errors)
        self.broker.start_ids_above()  # above the order ids of the Gateway's open orders and today's executions
        self.connected_since_ns = time.time_ns()
        self.reconnects += 1 if self.generation > 1 else 0
        c.set_phase(Phase.UP, "session up")
        if self.policy.after_ready():
            self.listener.alert("INFO", "gateway.recovered", "the Gateway session is up again")
        self._publish_status()
        self.listener.synced(self, lost)
        if problem:
            self.listener.alert("CRITICAL", "gateway.identity", problem, remedy)
            return
        self.spawn(self.feeds.issue())

    async def _hold(self, stop: asyncio.Event) -> None:
        """Heartbeat the live session until its socket is gone or we stop."""
        loop = asyncio.get_running_loop()
        while not stop.is_set() and not self._lost.is_set():
            started = loop.time()
            await self._heartbeat(stop)
            if self._sync_due is not None and time.monotonic() >= self._sync_due:
                await self._retry_sync()
            rest = self.settings.bridge_heartbeat_seconds - (loop.time() - started)
            if rest > 0:
                await first_of(stop, self._lost, timeout=rest)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            probe = self.broker.gateway_time_ns()
        except ConnectionError:
            return
        winner = await first_of(probe, stop, self._lost, timeout=self.settings.bridge_heartbeat_timeout)
        if winner is probe and not probe.cancelled() and probe.exception() is None:
            self.rtt_ms = round((loop.time() - t0) * 1000, 2)
            self.last_heartbeat = time.monotonic()
            self.gateway_time_ns = probe.result()
            self.count("heartbeats_ok")
            self.conditions.stalled_reason = ""
        elif winner is None:
            self.count("heartbeats_missed")
            self.conditions.stalled_reason = (
                f"no answer to reqCurrentTime within {self.settings.bridge_heartbeat_timeout:g} s "
                "while the socket is up"
            )
        if not probe.done():
            probe.cancel()
        self._publish_status()

    async def _retry_sync(self) -> None:
        errors = await self.broker.sync(
            REQUEST_TIMEOUT,
            with_orders=not self.settings.ib_readonly,
            with_account=not self.conditions.identity_problem,
        )
        if self._lost.is_set():
            return
        self.conditions.sync_problem = f"startup sync incomplete: {'; '.join(errors)}" if errors else ""
        self._sync_due = time.monotonic() + SYNC_RETRY_SECONDS if errors else None
        lost = self._reconcile(complete=not errors)
        self.broker.start_ids_above()
        self.listener.synced(self, lost)
        self._publish_status()

    def _reconcile(self, *, complete: bool) -> list[OrderRecord]:
        b = self.broker
        return reconcile_orders(b.orders(), b.fills(), self.orders, self.generation, complete=complete)

    # ------------------------------------------------------------------ the broker's events

    def _on_error(self, req_id: int, code: int, text: str) -> None:
        self.count(f"code_{code}")
        early = self._early
        if code == 326 and early is not None and not early.done():
            early.set_result(ConnectFailure(Failure.CLIENT_ID_IN_USE, text))
            return
        for action in self.conditions.on_gateway_code(code, text, req_id, time.monotonic()):
            if isinstance(action, ReissueAll):
                self.feeds.reissue(None, action.why, tell_gateway=False)
                self.feeds.resubscribe_account()
            elif isinstance(action, ReissueStale):
                stale = self.subs.stale_since(action.since)
                if stale:
                    self.feeds.reissue(stale, action.why, tell_gateway=True)
            elif isinstance(action, Warn):
                log_every(action.key, action.every, "WARNING", action.message)
        self._publish_status()

    def _on_api_error(self, msg: str) -> None:
        early = self._early
        if early is not None and not early.done() and "closed" in msg:
            early.set_result(ConnectFailure(Failure.CLOSED_DURING_CONNECT, msg))

    def _on_disconnected(self) -> None:
        self._lost.set()
        self.outbox.clear()
        self.subs.invalidate()

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_every("bridge.task", 30, "WARNING", f"background task failed: {task.exception()!r}")

    def close(self) -> None:
        """Orderly shutdown: the one place the session's socket is closed."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        self.outbox.clear()
        self.conditions.set_phase(Phase.STOPPED, "stopped")
        self._publish_status()
        self.broker.disconnect()
        logger.info("Gateway session closed")
