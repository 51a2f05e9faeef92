"""The executor's adapters: the bus in (targets, quotes, broker reports), the bridge out (orders), the request
socket for operators, and the timers (order expiry, kill switch, periodic reconciliation).

It only moves messages between sockets and the Executor core and carries out the actions the core returns.
Start-up and recovery are one path: open the ledger, reconcile with the broker, then trade.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import msgspec
from loguru import logger

from procs.executor import hours
from procs.executor.actions import Action, Cancel, Modify, Publish, Reconcile, Send
from procs.executor.commands import Commands, iso
from procs.executor.engine import Executor
from procs.executor.ledger import LedgerError, open_ledger
from procs.executor.local import LocalBroker
from procs.executor.reconcile import Reconciler, ReconcileReport
from procs.executor.stops import is_stop
from shared.bus import (
    BusClient,
    Received,
    RequestFailed,
    RequestTimeout,
    pub_endpoint,
    req_endpoint,
    stream_of,
)
from shared.config import ConfigError, mask_account
from shared.log import log_every
from shared.messages import (
    CancelOrder,
    ContractInfo,
    ContractRequest,
    Fill,
    GatewayStateName,
    GatewayStatus,
    HealthReport,
    HealthRequest,
    ModifyOrder,
    OrderAck,
    OrderEvent,
    PlaceOrder,
    Position,
    Quote,
    TargetPosition,
)
from shared.service import Service

STREAMS = ("target.", "quote.", "order.", "fill", "gateway", "position")  # whole streams: their gaps are seen
BROKER_STREAMS = frozenset({"order", "fill", "position"})
RETRY_SECONDS = 2.0
SENDERS = 8  # orders in flight to the bridge at once
BATCH_MAX = 64  # stream messages decided in one ledger transaction
RISK_PUBLISH_SECONDS = 5.0


async def main(svc: Service) -> None:
    s = svc.settings
    hours.warm_up()
    try:
        ledger = open_ledger(s.data_dir / "ledger.sqlite")
    except LedgerError as exc:
        raise ConfigError(str(exc)) from None  # exit 78: restarting cannot fix a bad ledger file
    try:  # a ledger never resends orders to another account or books local fills for broker orders
        identity = {"account": s.ib_account, "trading_mode": s.trading_mode, "execution": s.execution}
        ledger.claim_identity(identity, {**identity, "account": mask_account(s.ib_account)})
    except LedgerError as exc:
        ledger.close()
        raise ConfigError(str(exc)) from None
    clock = hours.MarketClock(s.sim_speed if s.gateway == "sim" else None)
    try:
        await ExecutorApp(svc, Executor(s, ledger, clock, mono=time.monotonic_ns)).run()
    finally:
        ledger.close()


class ExecutorApp:
    def __init__(self, svc: Service, ex: Executor) -> None:
        s = svc.settings
        self.svc = svc
        self.ex = ex
        bridge_req = req_endpoint(s, "bridge")
        # orders go out concurrently (a REQ socket carries one request at a time); PlaceOrder is idempotent
        self.order_clients: asyncio.Queue[BusClient] = asyncio.Queue()
        for _ in range(SENDERS):
            self.order_clients.put_nowait(svc.bus.client(bridge_req, timeout=2.0, retries=2))
        self._sending: set[asyncio.Task[None]] = set()
        # reconciliation and contracts: a slow Gateway answer (the bridge bounds each at 10 s) is waited for, not
        # abandoned and asked again
        self.sync = svc.bus.client(bridge_req, timeout=12.0, retries=1)
        # the operator's reads of the broker (accept-broker) on a socket of their own: a REQ socket carries one
        # request at a time, and a reconciliation may be waiting on `sync`
        self.operator_client = svc.bus.client(bridge_req, timeout=5.0, retries=1)
        self.sub = svc.bus.subscriber([pub_endpoint(s, "bridge"), pub_endpoint(s, "strategy")], STREAMS)
        self.server = svc.bus.server(
            req_endpoint(s, "executor"),
            "executor",
            Commands(ex, self.execute, self.state, self.extra, self.operator_client.call).handle,
        )
        self.local = (
            LocalBroker(s.local_slippage_bps, s.local_commission_per_share, ex.view.ticks)
            if s.execution == "local"
            else None
        )
        self.reconcile_wanted = asyncio.Event()
        self.sync_wanted = asyncio.Event()
        # one thread of its own: the default pool would start threads (and take the GIL) during a burst
        self._sync_thread = ThreadPoolExecutor(1, thread_name_prefix="ledger-sync")
        self.reconcile_reason = "start-up"
        self.reconciler = Reconciler(ex, self.sync.call)
        self.last_reconcile: ReconcileReport | None = None
        self.last_reconcile_ns = 0
        self.reconciliations = 0
        self.failed = ""  # the loop that crashed, if one did

    async def run(self) -> None:
        svc = self.svc
        svc.set_state("STARTING")
        if self.local is not None:
            self.local.restore(self.ex.view.orders(working_only=True))
        self.reconcile_wanted.set()
        tasks = [
            asyncio.create_task(self._guard(self._streams(), "streams")),
            asyncio.create_task(self._guard(self._timers(), "timers")),
            asyncio.create_task(self._guard(self._reconcile_loop(), "reconcile")),
            asyncio.create_task(self._guard(self._sync_behind(), "ledger sync")),
            asyncio.create_task(self.server.serve(svc.stop)),
        ]
        try:
            await svc.stop.wait()
        finally:
            for t in [*tasks, *self._sending]:
                t.cancel()
            await asyncio.gather(*tasks, *self._sending, return_exceptions=True)
            self.sub.close()
            self.server.close()
            while not self.order_clients.empty():
                self.order_clients.get_nowait().close()
            self._sync_thread.shutdown(wait=True)
            self.sync.close()
            self.operator_client.close()
        if self.failed:  # exit 1, not 0: supervisord restarts a program that stopped unexpectedly
            raise RuntimeError(f"executor loop {self.failed} failed (see the traceback above)")

    async def _guard(self, loop: Awaitable[None], name: str) -> None:
        try:
            await loop
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one loop must stop the process (supervisord restarts it), not hang it
            logger.exception("executor loop {} failed", name)
            self.failed = name
            self.svc.stop.set()

    # ------------------------------------------------------------------ streams in

    async def _streams(self) -> None:
        while not self.svc.stop.is_set():
            got = await self.sub.recv(timeout=0.2)
            if got is None:
                continue
            batch = [got]
            while len(batch) < BATCH_MAX and (more := self.sub.recv_nowait()) is not None:
                batch.append(more)
            await self._decide_batch(batch)

    async def _decide_batch(self, batch: list[Received]) -> None:
        """Group commit: the messages already waiting (a burst of targets, an order's reports) are decided in one
        ledger transaction and only then is anything sent or published. A group ends early at the first message
        that makes an order, which goes out at once (committed, so a SIGKILL cannot lose it); the rest of the
        batch follows in the next group. The disk sync runs behind, in a thread (Ledger.sync)."""
        at = 0
        while at < len(batch):
            decided: list[tuple[Received, list[Action]]] = []
            with self.ex.decide_together():  # a failed commit raises: crash-only, nothing of it was sent
                while at < len(batch):
                    item = batch[at]
                    at += 1
                    decided.append((item, self._decide(item)))
                    if any(isinstance(a, Send) for a in decided[-1][1]):
                        break
            for item, actions in decided:
                try:
                    await self.execute(actions)
                except Exception as exc:  # one bad message costs one message
                    self._failed(item, exc)
            if any(isinstance(a, Send) for _, actions in decided for a in actions):
                await asyncio.sleep(0)  # let the order go out before the next message is decided

    async def _sync_behind(self) -> None:
        """fsync the ledger's new orders right behind their sends, from a thread, coalescing bursts."""
        while not self.svc.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sync_wanted.wait(), 1.0)
            if self.sync_wanted.is_set():
                self.sync_wanted.clear()
                await asyncio.get_running_loop().run_in_executor(self._sync_thread, self.ex.sync_ledger)

    def _decide(self, got: Received) -> list[Action]:
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
                actions += self._local_events(self.local.on_quote(msg.symbol, quote))
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

    def _local_events(self, events: list[OrderEvent | Fill]) -> list[Action]:
        actions: list[Action] = []
        for e in events:
            actions += self.ex.on_fill(e) if isinstance(e, Fill) else self.ex.on_order_event(e)
        return actions

    # ------------------------------------------------------------------ actions out

    async def execute(self, actions: list[Action]) -> None:
        """Carry out decided actions; new orders in the ledger get their disk sync right behind their sends."""
        if self.ex.take_unsynced():
            self.sync_wanted.set()  # the fsync runs in a thread: the sends spawned below never wait for it
        for a in actions:
            if isinstance(a, Publish):
                self.svc.publish(a.topic, a.msg)
            elif isinstance(a, Reconcile):
                self.reconcile_reason = a.reason
                self.reconcile_wanted.set()
            elif isinstance(a, Modify):
                if self.local is None:
                    self._spawn_send(a)
            elif self.local is not None:
                events = (
                    self.local.place(a.order, self.ex.view.quotes.get(a.order.symbol))
                    if isinstance(a, Send)
                    else self.local.cancel(a.client_order_id)
                )
                await self.execute(self._local_events(events))
            else:
                self._spawn_send(a)

    def _spawn_send(self, item: Send | Cancel | Modify) -> None:
        """Each order or cancel goes out at once on a free request socket of the pool, never behind another."""
        task = asyncio.create_task(self._send_one(item))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_one(self, item: Send | Cancel | Modify) -> None:
        client = await self.order_clients.get()
        try:
            if isinstance(item, Send):
                await self.execute(await self._place(client, item))
            elif isinstance(item, Modify):
                await self._modify(client, item)
            else:
                await self._cancel(client, item.client_order_id)
        except Exception as exc:  # one failed send must not take the sender down
            self.svc.count("errors")
            log_every("send.error", 10, "ERROR", f"sending {item} failed: {type(exc).__name__}: {exc}")
        finally:
            self.order_clients.put_nowait(client)

    async def _place(self, client: BusClient, send: Send) -> list[Action]:
        o, instead = self.ex.clear_to_send(send.order)
        if o is None:
            return instead
        req = (
            self._stop_request(o)
            if is_stop(o.client_order_id)
            else PlaceOrder(
                client_order_id=o.client_order_id,
                symbol=o.symbol,
                side=o.side,
                quantity=o.quantity,
                order_type=o.order_type,
                limit_price=o.limit_price,
                oca_group=self._oca_of(o),
            )
        )
        try:
            ack = msgspec.convert(await client.call(req, idempotent=True), OrderAck)
        except RequestFailed as exc:
            return self.ex.on_send_refused(o.client_order_id, str(exc))
        except RequestTimeout as exc:
            return self.ex.on_send_lost(o.client_order_id, str(exc))
        return self.ex.on_ack(ack)

    def _stop_request(self, o: Any) -> PlaceOrder:
        """A protective stop: GTC, outside regular hours, its own OCA group (orders that reduce the position join
        it, so a fill of either reduces the other and the two never close more than the position)."""
        spec = self.ex.view.settings.stop_for(o.symbol)
        trail = o.order_type == "TRAIL"
        return PlaceOrder(
            client_order_id=o.client_order_id,
            symbol=o.symbol,
            side=o.side,
            quantity=o.quantity,
            order_type="TRAIL" if trail else "STP",
            stop_price=None if trail else o.limit_price,
            trailing_percent=spec[1] if trail and spec is not None else None,
            tif="GTC",
            outside_rth=True,
            oca_group=o.client_order_id,
        )

    def _oca_of(self, o: Any) -> str:
        """The OCA group of the symbol's live stop when `o` is on the stop's side (it reduces the position, or
        closes it and goes beyond): each fill of one reduces the other, so the two never close more than the
        position -- a stop that fills while a flip works takes its shares off the flip."""
        live = [
            s for s in self.ex.view.stops_of(o.symbol) if s.working and s.side == o.side and s.status != "NEW"
        ]
        return live[0].client_order_id if live else ""

    async def _modify(self, client: BusClient, m: Modify) -> None:
        try:
            await client.call(
                ModifyOrder(client_order_id=m.client_order_id, quantity=m.quantity), idempotent=True
            )
        except (RequestFailed, RequestTimeout) as exc:
            log_every(
                "modify.failed", 10, "WARNING", f"modify of {m.client_order_id} failed: {exc}; reconciling"
            )
            self._want_reconcile("a stop modify failed")

    async def _cancel(self, client: BusClient, client_order_id: str) -> None:
        try:
            await client.call(CancelOrder(client_order_id=client_order_id), idempotent=True)
        except (RequestFailed, RequestTimeout) as exc:
            log_every(
                "cancel.failed", 10, "WARNING", f"cancel of {client_order_id} failed: {exc}; reconciling"
            )
            self.reconcile_reason = "a cancel failed"
            self.reconcile_wanted.set()

    # ------------------------------------------------------------------ timers and reconciliation

    async def _timers(self) -> None:
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
                self.reconcile_reason = "periodic"
                self.reconcile_wanted.set()
            if now >= next_risk:
                next_risk = now + RISK_PUBLISH_SECONDS
                await self.execute([self.ex.publish_risk()])
            self._heartbeat_detail()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.svc.stop.wait(), 0.5)

    async def _reconcile_loop(self) -> None:
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
        try:
            await self._load_contracts()
            health = msgspec.convert(await self.sync.call(HealthRequest()), HealthReport)
            self.ex.anchor_clock(health.gateway_time_ns)
            if (
                self.ex.view.gateway is None
            ):  # the bridge's state stream may not have reached us yet (slow joiner)
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
            if health.state != "READY" and not (health.state == "DEGRADED" and self.ex.view.farm_down):
                log_every("reconcile.wait", 30, "INFO", f"reconciliation waits: bridge is {health.state}")
                return False
            report, actions = await self.reconciler.run(reason)
        except (RequestTimeout, RequestFailed, msgspec.ValidationError) as exc:
            log_every("reconcile.failed", 30, "WARNING", f"reconciliation ({reason}) failed: {exc}; retrying")
            return False
        self.last_reconcile, self.last_reconcile_ns = report, time.time_ns()
        self.reconciliations += 1
        if report.deferred:  # a resend waits for a quote or the gateway: look again shortly
            asyncio.get_running_loop().call_later(RETRY_SECONDS, self._want_reconcile, "deferred resend")
        await self.execute(actions + self.ex.mark_synced())
        return True

    def _want_reconcile(self, reason: str) -> None:
        self.reconcile_reason = reason
        self.reconcile_wanted.set()

    async def _load_contracts(self) -> None:
        """The minimum tick of every symbol we trade or hold (asked once per symbol)."""
        wanted = set(self.svc.settings.symbols) | set(self.ex.view.positions)
        for symbol in sorted(wanted - set(self.ex.view.ticks)):
            try:
                info = msgspec.convert(await self.sync.call(ContractRequest(symbol=symbol)), ContractInfo)
            except (
                RequestFailed
            ) as exc:  # e.g. an unknown symbol: its orders are refused by the contract rule
                log_every(f"contract.{symbol}", 300, "WARNING", f"no contract details for {symbol}: {exc}")
                continue
            if info.min_tick > 0:
                self.ex.on_contract(symbol, info.min_tick)

    # ------------------------------------------------------------------ health

    def state(self) -> str:
        if self.ex.view.halt.halted:
            return "HALTED"
        if not self.ex.view.synced:
            return "SYNCING"
        return "READY"

    def extra(self) -> dict[str, Any]:
        r = self.last_reconcile
        return {
            "last_reconcile": iso(self.last_reconcile_ns),
            "last_reconcile_reason": r.reason if r else "",
            "last_reconcile_open_orders": r.open_orders if r else 0,
            "reconciliations": self.reconciliations,
            "ledger_syncs": self.ex.view.ledger_syncs,  # fsyncs of new orders (and halts), each right behind its send
            "position_mismatches": [str(m) for m in r.mismatches] if r else [],
        }

    def _heartbeat_detail(self) -> None:
        ex = self.ex.view
        self.svc.set_state(self.state())
        self.svc.counters.update(ex.counters)
        self.svc.detail.update(
            halted=ex.halt.halted,
            halt_reason=ex.halt.reason,
            circuit_breaker=ex.circuit_breaker,
            working_orders=sum(1 for o in ex.working.values() if o.working),
            gateway=ex.gateway.state if ex.gateway else "UNKNOWN",
            last_reconcile=iso(self.last_reconcile_ns),
            unprotected=ex.unprotected(),  # symbol -> seconds with a position and no live stop
            reconcile_seconds=self.svc.settings.reconcile_seconds,
        )
