"""The executor's loops: the bus streams in (decided in group commits), the timers (order expiry, kill switch,
flatten, periodic reconciliation, the risk state), the reconciliation with the broker, and the ledger's disk sync.

An adapter: it moves messages between the sockets and the Executor core and hands the actions the core returns to
`execute` (app.py). Start-up and recovery are one path: reconcile with the broker, then trade.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import msgspec
from loguru import logger

from procs.executor.actions import Action, Reconcile, Send
from procs.executor.engine import Executor
from procs.executor.local import LocalBroker
from procs.executor.reconcile import Reconciler, ReconcileReport
from shared.bus import BusClient, BusSubscriber, Received, RequestFailed, RequestTimeout, stream_of
from shared.log import log_every
from shared.messages import (
    ContractInfo,
    ContractRequest,
    Fill,
    GatewayStateName,
    GatewayStatus,
    HealthReport,
    HealthRequest,
    OrderEvent,
    Position,
    Quote,
    TargetPosition,
)
from shared.service import Service

BROKER_STREAMS = frozenset({"order", "fill", "position"})
RETRY_SECONDS = 2.0
BATCH_MAX = 64  # stream messages decided in one ledger transaction
RISK_PUBLISH_SECONDS = 5.0

Execute = Callable[[list[Action]], Awaitable[None]]


class Loops:
    """The executor's long-running loops, each run under app.py's guard."""

    def __init__(
        self,
        svc: Service,
        ex: Executor,
        sub: BusSubscriber,
        sync: BusClient,
        local: LocalBroker | None,
        execute: Execute,
        heartbeat: Callable[[], None],
    ) -> None:
        self.svc = svc
        self.ex = ex
        self.sub = sub
        # reconciliation and contracts: a slow Gateway answer (the bridge bounds each at 10 s) is waited for, not
        # abandoned and asked again
        self.sync = sync
        self.local = local
        self.execute = execute
        self.heartbeat = heartbeat
        self.reconcile_wanted = asyncio.Event()
        self.sync_wanted = asyncio.Event()
        # one thread of its own: the default pool would start threads (and take the GIL) during a burst
        self.sync_thread = ThreadPoolExecutor(1, thread_name_prefix="ledger-sync")
        self.reconcile_reason = "start-up"
        self.reconciler = Reconciler(ex, sync.call)
        self.last_reconcile: ReconcileReport | None = None
        self.last_reconcile_ns = 0
        self.reconciliations = 0

    # ------------------------------------------------------------------ streams in

    async def streams(self) -> None:
        while not self.svc.stop.is_set():
            got = await self.sub.recv(timeout=0.2)
            if got is None:
                continue
            batch = [got]
            while len(batch) < BATCH_MAX and (more := self.sub.recv_nowait()) is not None:
                batch.append(more)
            await self.decide_batch(batch)

    async def decide_batch(self, batch: list[Received]) -> None:
        """Group commit: the messages already waiting (a burst of targets, an order's reports) are decided in one
        ledger transaction and only then is anything sent or published. A group ends early at the first message
        that makes an order, which goes out at once (committed, so a SIGKILL cannot lose it); the rest of the
        batch follows in the next group. The disk sync runs behind, in a thread (sync_behind)."""
        at = 0
        while at < len(batch):
            decided: list[tuple[Received, list[Action]]] = []
            with self.ex.decide_together():  # a failed commit raises: crash-only, nothing of it was sent
                while at < len(batch):
                    item = batch[at]
                    at += 1
                    decided.append((item, self.decide(item)))
                    if any(isinstance(a, Send) for a in decided[-1][1]):
                        break
            for item, actions in decided:
                try:
                    await self.execute(actions)
                except Exception as exc:  # one bad message costs one message
                    self._failed(item, exc)
            if any(isinstance(a, Send) for _, actions in decided for a in actions):
                await asyncio.sleep(0)  # let the order go out before the next message is decided

    def decide(self, got: Received) -> list[Action]:
        """One stream message through the core, plus a reconciliation when the bus lost broker messages."""
        try:
            actions = self._dispatch(got.msg)
        except Exception as exc:  # its writes were rolled back alone (a savepoint); the others stand
            self._failed(got, exc)
            return []
        stream = stream_of(got.topic)
        if got.new_epoch and got.msg.source == "bridge":
            actions.append(Reconcile("new bridge epoch"))
        elif got.gap and stream in BROKER_STREAMS:  # a lost fill or order state: ask the broker
            actions.append(Reconcile(f"{got.gap} {stream} message(s) lost on the bus"))
        return actions

    def _failed(self, got: Received, exc: Exception) -> None:
        self.svc.count("errors")
        log_every("stream.error", 10, "ERROR", f"failed on {got.topic}: {type(exc).__name__}: {exc}")
        logger.opt(exception=True).debug("stream error")

    def _dispatch(self, msg: Any) -> list[Action]:
        ex = self.ex
        if isinstance(msg, TargetPosition):
            return ex.on_target(msg)
        if isinstance(msg, Quote):
            actions = ex.on_quote(msg)
            quote = ex.view.quotes.get(msg.symbol)
            if self.local is not None and quote is not None:
                actions += self.local_events(self.local.on_quote(msg.symbol, quote))
            return actions
        if isinstance(msg, GatewayStatus):
            return ex.on_gateway(msg)
        if self.local is not None:
            return []  # local paper trading: the broker's orders and fills are not ours
        if isinstance(msg, OrderEvent):
            return ex.on_order_event(msg)
        if isinstance(msg, Fill):
            return ex.on_fill(msg)
        if isinstance(msg, Position):
            return ex.on_position(msg)
        return []

    def local_events(self, events: list[OrderEvent | Fill]) -> list[Action]:
        """Local paper trading's answers, through the same core paths as a broker's."""
        actions: list[Action] = []
        for e in events:
            actions += self.ex.on_fill(e) if isinstance(e, Fill) else self.ex.on_order_event(e)
        return actions

    async def sync_behind(self) -> None:
        """fsync the ledger's new orders right behind their sends, from a thread, coalescing bursts."""
        while not self.svc.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sync_wanted.wait(), 1.0)
            if self.sync_wanted.is_set():
                self.sync_wanted.clear()
                await asyncio.get_running_loop().run_in_executor(self.sync_thread, self.ex.sync_ledger)

    # ------------------------------------------------------------------ timers and reconciliation

    async def timers(self) -> None:
        next_reconcile = time.monotonic() + self.svc.settings.reconcile_seconds
        next_risk = 0.0
        while not self.svc.stop.is_set():
            ex = self.ex
            await self.execute(
                ex.expire_orders() + ex.check_daily_loss() + ex.enforce_halt() + ex.flatten_step()
            )
            now = time.monotonic()
            if now >= next_reconcile:
                next_reconcile = now + self.svc.settings.reconcile_seconds
                self.want_reconcile("periodic")
            if now >= next_risk:
                next_risk = now + RISK_PUBLISH_SECONDS
                await self.execute([self.ex.publish_risk()])
            self.heartbeat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.svc.stop.wait(), 0.5)

    def want_reconcile(self, reason: str) -> None:
        self.reconcile_reason = reason
        self.reconcile_wanted.set()

    async def reconcile_loop(self) -> None:
        while not self.svc.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reconcile_wanted.wait(), 1.0)
            if not self.reconcile_wanted.is_set():
                continue
            self.reconcile_wanted.clear()
            if not await self._reconcile_once(self.reconcile_reason):
                await asyncio.sleep(RETRY_SECONDS)
                self.reconcile_wanted.set()

    async def _reconcile_once(self, reason: str) -> bool:
        """One reconciliation; False when the bridge could not be asked (retried shortly)."""
        view = self.ex.view
        try:
            await self._load_contracts()
            health = msgspec.convert(await self.sync.call(HealthRequest()), HealthReport)
            self.ex.anchor_clock(health.gateway_time_ns)
            if view.gateway is None:  # the bridge's state stream may not have reached us yet (slow joiner)
                ready = health.state == "READY" and not self.svc.settings.ib_readonly
                first = GatewayStatus(
                    state=cast(GatewayStateName, health.state),
                    orders_allowed=ready,
                    gateway_time_ns=health.gateway_time_ns,
                )
                self.ex.on_gateway(first)  # its Reconcile request is this very reconciliation
            if self.local is not None:  # local paper trading: the ledger is the book, nothing to compare
                await self.execute(self.ex.mark_synced())
                return True
            # a market-data farm down (DEGRADED, orders allowed) leaves positions and orders to reconcile
            if health.state != "READY" and not (health.state == "DEGRADED" and view.farm_down):
                log_every("reconcile.wait", 30, "INFO", f"reconciliation waits: bridge is {health.state}")
                return False
            report, actions = await self.reconciler.run(reason)
        except (RequestTimeout, RequestFailed, msgspec.ValidationError) as exc:
            log_every("reconcile.failed", 30, "WARNING", f"reconciliation ({reason}) failed: {exc}; retrying")
            return False
        self.last_reconcile, self.last_reconcile_ns = report, time.time_ns()
        self.reconciliations += 1
        if report.deferred:  # a resend waits for a quote or the gateway: look again shortly
            asyncio.get_running_loop().call_later(RETRY_SECONDS, self.want_reconcile, "deferred resend")
        await self.execute(actions + self.ex.mark_synced())
        return True

    async def _load_contracts(self) -> None:
        """The minimum tick of every symbol we trade or hold (asked once per symbol)."""
        view = self.ex.view
        wanted = set(self.svc.settings.symbols) | set(view.positions)
        for symbol in sorted(wanted - set(view.ticks)):
            try:
                info = msgspec.convert(await self.sync.call(ContractRequest(symbol=symbol)), ContractInfo)
            except (
                RequestFailed
            ) as exc:  # e.g. an unknown symbol: its orders are refused by the contract rule
                log_every(f"contract.{symbol}", 300, "WARNING", f"no contract details for {symbol}: {exc}")
                continue
            if info.min_tick > 0:
                self.ex.on_contract(symbol, info.min_tick)
