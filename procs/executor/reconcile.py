"""Reconciliation with the broker through the bridge: open orders, executions since the last seen, positions.

Runs at start-up, after a new bridge epoch or a reconnect, and every RECONCILE_SECONDS. What it learns goes
through the same idempotent paths as the live stream (status by orderRef, fills by exec_id), so running it twice
changes nothing. It never trusts silence while the bridge is not READY; a position that still differs from the
broker's beyond POSITION_TOLERANCE after a second look halts trading with both numbers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from procs.executor.actions import Action, Publish, Send
from procs.executor.engine import Executor
from procs.executor.orders import is_ours
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
        self.call = call
        self.grace_ns = int(grace_seconds * 1e9)
        # an order last touched before this process started cannot have a send in flight: no grace for it
        self.started_ns = ex.wall() if started_ns is None else started_ns
        self.strikes: dict[str, int] = {}  # a mismatch on a symbol with working orders must be seen twice

    async def run(self, reason: str) -> tuple[ReconcileReport, list[Action]]:
        report = ReconcileReport(reason)
        actions: list[Action] = []
        raw = await self.call(OpenOrdersRequest())
        open_orders = msgspec.convert(raw, list[OrderEvent])
        report.open_orders = len(open_orders)
        seen = {e.client_order_id for e in open_orders if is_ours(e.client_order_id)}
        for e in open_orders:
            actions += self.ex.on_order_event(e)
        actions += await self._executions(report)
        actions += self._settle_missing(seen, report)
        actions += await self._positions(report)
        event("reconciled", reason=repr(reason), open_orders=report.open_orders, fills_seen=report.fills_seen,
              fills_booked=report.fills_booked, resent=len(report.resent), closed=len(report.closed),
              mismatches=len(report.mismatches), halted=report.halted)  # fmt: skip
        return report, actions

    async def _executions(self, report: ReconcileReport) -> list[Action]:
        last = int(self.ex.ledger.meta("last_exec_ns", "0"))
        since = max(0, last - EXEC_LOOKBACK_NS) if last else 0
        fills = msgspec.convert(await self.call(ExecutionsRequest(since_ns=since)), list[Fill])
        report.fills_seen += len(fills)
        booked = self.ex.ledger.booked_fills([f.exec_id for f in fills])
        actions: list[Action] = []
        for f in fills:
            known = f.exec_id in booked
            if known and (booked[f.exec_id] or f.commission is None):
                continue  # nothing new in it
            actions += self.ex.on_fill(f)
            report.fills_booked += int(not known and self.ex.ledger.has_fill(f.exec_id))
        return actions

    def _settle_missing(self, seen: set[str], report: ReconcileReport) -> list[Action]:
        """Our working orders the broker does not list: resend the never-acknowledged, close the gone."""
        now = self.ex.wall()
        timeout_ns = int(self.ex.settings.order_timeout_seconds * 1e9)
        actions: list[Action] = []
        for o in list(self.ex.ledger.working.values()):
            in_flight = o.updated_ns >= self.started_ns and now - o.updated_ns < self.grace_ns
            if o.client_order_id in seen or not o.working or in_flight:
                continue
            if o.status == "NEW" and now - o.created_ns < timeout_ns:
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
        confirmed = []
        for m in mismatches:
            self.strikes[m.symbol] = self.strikes.get(m.symbol, 0) + 1
            if self.ex.working_shares(m.symbol) == 0 or self.strikes[m.symbol] >= 2:
                confirmed.append(m)
        if not confirmed:
            return actions
        detail = "; ".join(str(m) for m in confirmed)
        alert = Alert(
            severity="CRITICAL",
            code="position.mismatch",
            message=f"position mismatch: {detail}",
            remedy="compare with TWS, fix the position by hand, then `bin/trader resume`",
            evidence={m.symbol: {"ledger": str(m.ledger), "broker": str(m.broker)} for m in confirmed},
        )
        actions.append(Publish("alert", alert))
        if not self.ex.halt.halted:
            report.halted = True
            actions += self.ex.trip_halt(f"position mismatch: {detail}", "reconcile")
        return actions

    async def _mismatches(self) -> list[Mismatch]:
        positions = msgspec.convert(await self.call(PositionsRequest()), list[Position])
        broker: dict[str, Decimal] = {}
        for p in positions:
            broker[p.symbol] = broker.get(p.symbol, Decimal(0)) + p.quantity
        self.ex.broker_positions = broker
        ledger = {s: p.quantity for s, p in self.ex.ledger.positions.items()}
        return diff_positions(ledger, broker, self.ex.settings.position_tolerance)
