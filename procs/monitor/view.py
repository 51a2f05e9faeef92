"""What the monitor knows of the stack, as plain values: filled by the app from the bus, supervisord and the
executor's status answer; read by the metric mapping, the dead-man decision and `bin/gateway-health`.

Bounded: per-program and per-symbol maps only (both fixed lists), reject reasons folded into a few words,
and fills and orders remembered by id in bounded sets. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shared.messages import AccountValue, Fill, Heartbeat, OrderEvent, Position

ACCOUNT_TAGS = frozenset(
    {"NetLiquidation", "TotalCashValue", "BuyingPower", "GrossPositionValue", "UnrealizedPnL", "RealizedPnL"}
)
MAX_REASONS = 20  # distinct reject reasons kept as labels; the rest count as "other"
_WORD = re.compile(r"[a-z][a-z_]*")


class SeenIds:
    """The last `size` ids seen: a fill published by both the bridge and the executor is counted once."""

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.size = size

    def first_time(self, key: str) -> bool:
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


def reject_reason(ev: OrderEvent) -> str:
    """A bounded label: IB's error code, else the reason's first word."""
    if ev.error_code:
        return f"ib_{ev.error_code}"
    m = _WORD.search(ev.reason.lower())
    return m.group(0)[:24] if m else "unknown"


@dataclass
class StackView:
    started_mono: float = 0.0
    heartbeats: dict[str, tuple[Heartbeat, float]] = field(
        default_factory=dict
    )  # program -> (beat, heard at)
    bridge_state: str = ""
    supervisord_up: bool = False
    programs: dict[str, str] = field(default_factory=dict)  # supervisord: program -> state
    program_pids: dict[str, int] = field(default_factory=dict)
    not_running_since: dict[str, float] = field(default_factory=dict)
    rss: dict[str, int] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)  # the executor's StatusRequest answer
    status_at: float = 0.0
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (symbol, ledger|broker) -> qty
    account: dict[str, float] = field(default_factory=dict)
    orders: int = 0
    fills: int = 0
    order_events: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    bus_gaps: int = 0
    bus_lost: int = 0
    bridge_msgs_last_second: float = 0.0
    _last_sent: tuple[float, float] | None = None  # (outbox_sent, heard at) of the bridge's previous beat
    _orders_seen: SeenIds = field(default_factory=SeenIds)
    _fills_seen: SeenIds = field(default_factory=SeenIds)
    _rejects_seen: SeenIds = field(default_factory=SeenIds)

    def heard(self, hb: Heartbeat, now: float) -> None:
        self.heartbeats[hb.program] = (hb, now)
        if hb.program == "bridge":
            self.bridge_state = hb.state
            sent = hb.counters.get("outbox_sent")
            if sent is not None:
                if self._last_sent is not None and now > self._last_sent[1] and sent >= self._last_sent[0]:
                    self.bridge_msgs_last_second = (sent - self._last_sent[0]) / (now - self._last_sent[1])
                self._last_sent = (sent, now)

    def order(self, ev: OrderEvent) -> None:
        self.order_events[ev.status] += 1
        if self._orders_seen.first_time(ev.client_order_id):
            self.orders += 1
        if ev.status == "REJECTED" and self._rejects_seen.first_time(ev.client_order_id):
            reason = reject_reason(ev)
            if reason not in self.rejects and len(self.rejects) >= MAX_REASONS:
                reason = "other"
            self.rejects[reason] += 1

    def fill(self, f: Fill) -> None:
        if self._fills_seen.first_time(f.exec_id):
            self.fills += 1

    def position(self, p: Position) -> None:
        if p.sec_type == "STK":  # the bridge says the broker's, the executor its ledger's
            self.positions[(p.symbol, "broker" if p.source == "bridge" else "ledger")] = p.quantity

    def account_value(self, v: AccountValue) -> None:
        if v.tag in ACCOUNT_TAGS:
            try:
                self.account[v.tag] = float(v.value)
            except ValueError:
                pass

    def heartbeat_age(self, program: str, now: float) -> float | None:
        seen = self.heartbeats.get(program)
        return None if seen is None else now - seen[1]
