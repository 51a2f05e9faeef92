"""The executor's wiring: opens the ledger, builds the Executor core, its sockets (from `svc.bus`), the order
sender (sender.py) and the loops (loops.py), runs them, and carries out the actions the core returns.

It decides nothing: the core does. Start-up and recovery are one path: open the ledger, reconcile with the broker,
then trade. A crashed loop stops the process with an error, so supervisord restarts it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from loguru import logger

from procs.executor import hours
from procs.executor.actions import Action, Modify, Publish, Reconcile, Send
from procs.executor.commands import Commands, iso
from procs.executor.engine import Executor
from procs.executor.ledger import LedgerError, open_ledger
from procs.executor.local import LocalBroker
from procs.executor.loops import Loops
from procs.executor.sender import SENDERS, OrderSender
from shared.bus import pub_endpoint, req_endpoint
from shared.config import ConfigError, mask_account
from shared.service import Service

STREAMS = ("target.", "quote.", "order.", "fill", "gateway", "position")  # whole streams: their gaps are seen


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
        # the operator's reads of the broker (accept-broker) on a socket of their own: a REQ socket carries one
        # request at a time, and a reconciliation may be waiting on the loops' socket
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
        self.loops = Loops(
            svc,
            ex,
            self.sub,
            svc.bus.client(bridge_req, timeout=12.0, retries=1),
            self.local,
            self.execute,
            self._heartbeat_detail,
        )
        self.sender = OrderSender(
            ex,
            [svc.bus.client(bridge_req, timeout=2.0, retries=2) for _ in range(SENDERS)],
            self.execute,
            self.loops.want_reconcile,
            lambda: svc.count("errors"),
        )
        self.failed = ""  # the loop that crashed, if one did

    async def run(self) -> None:
        svc, loops = self.svc, self.loops
        svc.set_state("STARTING")
        if self.local is not None:
            self.local.restore(self.ex.view.orders(working_only=True))
        loops.reconcile_wanted.set()
        tasks = [
            asyncio.create_task(self._guard(loops.streams(), "streams")),
            asyncio.create_task(self._guard(loops.timers(), "timers")),
            asyncio.create_task(self._guard(loops.reconcile_loop(), "reconcile")),
            asyncio.create_task(self._guard(loops.sync_behind(), "ledger sync")),
            asyncio.create_task(self.server.serve(svc.stop)),
        ]
        try:
            await svc.stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.sender.stop()
            self.sub.close()
            self.server.close()
            loops.sync_thread.shutdown(wait=True)
            loops.sync.close()
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

    # ------------------------------------------------------------------ actions out

    async def execute(self, actions: list[Action]) -> None:
        """Carry out decided actions; new orders in the ledger get their disk sync right behind their sends."""
        if self.ex.take_unsynced():
            self.loops.sync_wanted.set()  # the fsync runs in a thread: the sends spawned below never wait for it
        for a in actions:
            if isinstance(a, Publish):
                self.svc.publish(a.topic, a.msg)
            elif isinstance(a, Reconcile):
                self.loops.want_reconcile(a.reason)
            elif isinstance(a, Modify):
                if self.local is None:
                    self.sender.spawn(a)
            elif self.local is not None:
                events = (
                    self.local.place(a.order, self.ex.view.quotes.get(a.order.symbol))
                    if isinstance(a, Send)
                    else self.local.cancel(a.client_order_id)
                )
                await self.execute(self.loops.local_events(events))
            else:
                self.sender.spawn(a)

    # ------------------------------------------------------------------ health

    def state(self) -> str:
        view = self.ex.view
        if view.halt.halted:
            return "HALTED"
        if not view.synced:
            return "SYNCING"
        return "READY"

    def extra(self) -> dict[str, Any]:
        loops = self.loops
        r = loops.last_reconcile
        return {
            "last_reconcile": iso(loops.last_reconcile_ns),
            "last_reconcile_reason": r.reason if r else "",
            "last_reconcile_open_orders": r.open_orders if r else 0,
            "reconciliations": loops.reconciliations,
            "ledger_syncs": self.ex.view.ledger_syncs,  # fsyncs of new orders (and halts), each behind its send
            "position_mismatches": [str(m) for m in r.mismatches] if r else [],
        }

    def _heartbeat_detail(self) -> None:
        view = self.ex.view
        self.svc.set_state(self.state())
        self.svc.counters.update(view.counters)
        self.svc.detail.update(
            halted=view.halt.halted,
            halt_reason=view.halt.reason,
            circuit_breaker=view.circuit_breaker,
            working_orders=sum(1 for o in view.working.values() if o.working),
            gateway=view.gateway.state if view.gateway else "UNKNOWN",
            last_reconcile=iso(self.loops.last_reconcile_ns),
            unprotected=view.unprotected(),  # symbol -> seconds with a position and no live stop
            reconcile_seconds=self.svc.settings.reconcile_seconds,
        )
