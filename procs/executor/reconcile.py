"""Reconciliation with the broker through the bridge: open orders, executions since the last seen, positions.

Runs at start-up, after a new bridge epoch or a reconnect, and every RECONCILE_SECONDS. What it learns goes
through the same idempotent paths as the live stream (status by orderRef, fills by exec_id), so running it twice
changes nothing. The broker's open-order list is the truth about what is working: an order it lists is working,
an order of ours it lists that the ledger never saw is adopted. It never closes or resends an order created or
updated after its snapshot began, and resends nothing that the risk checks would refuse now. Only the stocks the
stack trades are compared; a position that still differs from the broker's beyond POSITION_TOLERANCE after a
second look halts trading and blocks that symbol, with both numbers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from procs.executor.actions import Action, Publish, Send
from procs.executor.engine import Executor
from procs.executor.orders import is_ours
from procs.executor.stops import is_stop
from shared.log import event
from shared.messages import (
    Alert,
    ExecutionsRequest,
    Fill,
    OpenOrdersRequest,
    OrderEvent,
    Position,
    PositionsRequest,
    Request,
)

Call = Callable[[Request], Awaitable[Any]]
EXEC_LOOKBACK_NS = 86_400 * 10**9  # re-read a day of executions: duplicates are free, a missed fill is not
GRACE_SECONDS = 5.0  # an order younger than this may simply not be listed yet
# checks that fail for want of a fact that comes soon (a quote after a restart): the resend waits, it is not dropped
WAIT_FOR = frozenset({"quote", "gateway", "order_rate", "circuit_breaker"})


@dataclass(frozen=True, slots=True)
class Mismatch:
    symbol: str
    ledger: Decimal
    broker: Decimal

    def __str__(self) -> str:
        return f"{self.symbol} ledger {self.ledger} broker {self.broker}"


@dataclass
class ReconcileReport:
    reason: str
    open_orders: int = 0
    fills_seen: int = 0
    fills_booked: int = 0
    resent: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # resends waiting for a fact the checks need
    closed: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    halted: bool = False


def diff_positions(
    ledger: Mapping[str, Decimal], broker: Mapping[str, Decimal], tolerance: Decimal
) -> list[Mismatch]:
    """Symbols whose shares differ by more than `tolerance`, in symbol order."""
    out = []
    for symbol in sorted(set(ledger) | set(broker)):
        ours, theirs = ledger.get(symbol, Decimal(0)), broker.get(symbol, Decimal(0))
        if abs(ours - theirs) > tolerance:
            out.append(Mismatch(symbol, ours, theirs))
    return out


class Reconciler:
    def __init__(
        self, ex: Executor, call: Call, grace_seconds: float = GRACE_SECONDS, started_ns: int | None = None
    ) -> None:
        self.ex = ex
        self.view = ex.view
        self.call = call
        self.grace_ns = int(grace_seconds * 1e9)
        # an order last touched before this process started cannot have a send in flight: no grace for it
        self.started_ns = ex.view.wall() if started_ns is None else started_ns
        self.strikes: dict[str, int] = {}  # a mismatch on a symbol with working orders must be seen twice

    async def run(self, reason: str) -> tuple[ReconcileReport, list[Action]]:
        report = ReconcileReport(reason)
        actions: list[Action] = []
        snapshot_ns = (
            self.view.wall()
        )  # anything touched from now on may be newer than what the broker answers
        raw = await self.call(OpenOrdersRequest())
        open_orders = [
            e
            for e in msgspec.convert(raw, list[OrderEvent])
            if is_ours(e.client_order_id) or is_stop(e.client_order_id)
        ]
        report.open_orders = len(open_orders)
        seen = {e.client_order_id for e in open_orders}
        for e in open_orders:
            actions += self.ex.on_listed(e)
        actions += await self._executions(report)
        actions += self._settle_missing(seen, snapshot_ns, report)
        actions += await self._positions(report)
        # protective stops: the listed ones stand, the gone ones are closed, then each position gets exactly one
        actions += self.ex.settle_stops(seen, snapshot_ns, self.started_ns, self.grace_ns)
        actions += self.ex.protect_all()
        event("reconciled", reason=repr(reason), open_orders=report.open_orders, fills_seen=report.fills_seen,
              fills_booked=report.fills_booked, resent=len(report.resent), closed=len(report.closed),
              mismatches=len(report.mismatches), halted=report.halted)  # fmt: skip
        return report, actions

    async def _executions(self, report: ReconcileReport) -> list[Action]:
        last = self.view.last_exec_ns()
        since = max(0, last - EXEC_LOOKBACK_NS) if last else 0
        waiting = self.view.oldest_unknown_commission_ns()
        if waiting:  # a fill still without its commission is asked about again, however old, until it comes
            since = min(since, waiting)
        fills = msgspec.convert(await self.call(ExecutionsRequest(since_ns=since)), list[Fill])
        report.fills_seen += len(fills)
        booked = self.view.booked_fills([f.exec_id for f in fills])
        actions: list[Action] = []
        for f in fills:
            known = f.exec_id in booked
            if known and (booked[f.exec_id] or f.commission is None):
                continue  # nothing new in it
            actions += self.ex.on_fill(f)
            report.fills_booked += int(not known and self.view.has_fill(f.exec_id))
        return actions

    def _settle_missing(self, seen: set[str], snapshot_ns: int, report: ReconcileReport) -> list[Action]:
        """Our working orders the broker does not list: resend the never-acknowledged (if the risk checks still
        pass), close the gone. An order touched since the snapshot began is left for the next reconciliation."""
        now = self.view.wall()
        timeout_ns = int(self.view.settings.order_timeout_seconds * 1e9)
        actions: list[Action] = []
        for o in list(self.view.working.values()):
            in_flight = o.updated_ns >= self.started_ns and now - o.updated_ns < self.grace_ns
            newer = o.updated_ns > snapshot_ns or o.created_ns > snapshot_ns
            if o.client_order_id in seen or not o.working or in_flight or newer:
                continue
            if o.unconfirmed:
                report.closed.append(o.client_order_id)
                actions += self.ex.close_unconfirmed(o)
                continue
            if o.status == "NEW" and now - o.created_ns < timeout_ns:
                refused = self.ex.may_send(o)
                if refused is not None and refused.rule in WAIT_FOR:
                    report.deferred.append(o.client_order_id)  # not knowable yet (no quote since start-up)
                    continue
                if refused is not None:
                    report.closed.append(o.client_order_id)
                    actions += self.ex.withdraw(o, refused)
                    continue
                report.resent.append(o.client_order_id)  # same orderRef: the bridge places it at most once
                actions.append(Send(o))
                continue
            why = "never reached the broker" if o.status == "NEW" else "no longer open at the broker"
            report.closed.append(o.client_order_id)
            actions += self.ex.on_order_event(
                OrderEvent(
                    client_order_id=o.client_order_id, status="CANCELLED", reason=f"{why} (reconciliation)"
                )
            )
        return actions

    async def _positions(self, report: ReconcileReport) -> list[Action]:
        mismatches = await self._mismatches()
        if mismatches:  # a fill may have landed between the two reads: look at executions once more
            actions = await self._executions(report)
            mismatches = await self._mismatches()
        else:
            actions = []
        report.mismatches = mismatches
        bad = {m.symbol for m in mismatches}
        for symbol in list(self.strikes):
            if symbol not in bad:
                del self.strikes[symbol]
        for symbol in list(self.view.blocked):
            if symbol not in bad:
                self.ex.unblock(symbol)
        confirmed = []
        for m in mismatches:
            self.strikes[m.symbol] = self.strikes.get(m.symbol, 0) + 1
            if m.symbol in self.view.blocked:
                continue  # already blocked and alerted
            if self.view.working_shares(m.symbol) == 0 or self.strikes[m.symbol] >= 2:
                confirmed.append(m)
        if not confirmed:
            return actions
        for m in confirmed:
            self.ex.block_mismatch(m.symbol, m.ledger, m.broker)
        detail = "; ".join(str(m) for m in confirmed)
        first = confirmed[0].symbol
        alert = Alert(
            severity="CRITICAL",
            code="position.mismatch",
            message=f"position mismatch: {detail}; nothing is ordered in {', '.join(m.symbol for m in confirmed)}",
            remedy=f"compare with TWS (`bin/trader reconcile`), then `bin/trader accept-broker {first} --reason "
            "TEXT` and `bin/trader resume`",
            evidence={m.symbol: {"ledger": str(m.ledger), "broker": str(m.broker)} for m in confirmed},
        )
        actions.append(Publish("alert", alert))
        if not self.view.halt.halted:
            report.halted = True
            actions += self.ex.trip_halt(f"position mismatch: {detail}", "reconcile")
        return actions

    async def _mismatches(self) -> list[Mismatch]:
        positions = msgspec.convert(await self.call(PositionsRequest()), list[Position])
        traded, others = split_holdings(positions, self.view.limits.symbols | set(self.view.positions))
        self.ex.note_broker_positions(traded, others)
        ledger = {s: p.quantity for s, p in self.view.positions.items()}
        return diff_positions(ledger, traded, self.view.settings.position_tolerance)


def split_holdings(positions: list[Position], traded: Set[str]) -> tuple[dict[str, Decimal], list[Position]]:
    """The broker's positions in the stocks the stack trades (by symbol), and every other holding (options on a
    traded symbol, other stocks, cash balances), which is shown but never compared or summed into a stock."""
    stocks: dict[str, Decimal] = {}
    others: list[Position] = []
    for p in positions:
        if p.sec_type == "STK" and p.symbol in traded:
            stocks[p.symbol] = stocks.get(p.symbol, Decimal(0)) + p.quantity
        elif p.quantity != 0:
            others.append(p)
    return stocks, others
