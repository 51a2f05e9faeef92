"""When the feature program warms up, and from what: the bridge's session and the Gateway's clock as the bus tells
them, the symbols waiting for history, and the history request for one of them.

GatewayWatch decides; app.py waits on it and asks the bridge. Pure apart from WarmupQueue's wake-up event: it
never publishes, never logs, never reads a clock and never asks the bridge itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from procs.features.bars import NS, history_bar_size
from shared.messages import HistoryRequest

SERVES_HISTORY = frozenset({"READY", "DEGRADED"})  # DEGRADED: a farm is down, history may still come


class WarmupQueue:
    """Symbols waiting for a warm-up, and a wake-up for the task that serves them."""

    def __init__(self) -> None:
        self.pending: dict[str, str] = {}  # symbol -> why
        self.wake = asyncio.Event()

    def ask(self, symbols: Iterable[str], why: str) -> None:
        for s in symbols:
            self.pending.setdefault(s, why)
        self.wake.set()

    def take(self) -> dict[str, str]:
        taken, self.pending = self.pending, {}
        self.wake.clear()
        return taken


@dataclass
class GatewayWatch:
    """The bridge's session and the Gateway's clock, from good bars' ends and the bridge's status messages."""

    clock_ns: int | None = None  # the Gateway's clock: latest good bar end or gateway_time_ns
    state: str = ""
    up: bool = False  # the bridge says its session can serve history
    was_up: bool = False

    def on_good_bar(self, start_ns: int, bar_seconds: int) -> None:
        """A good bar's end is the Gateway's clock (a rejected bar's time is not trusted: never call it for one)."""
        self.clock_ns = max(self.clock_ns or 0, start_ns + bar_seconds * NS)

    def on_status(self, state: str, gateway_time_ns: int) -> str:
        """Record a status; returns why every symbol needs a new warm-up ("" when none does)."""
        if gateway_time_ns:
            self.clock_ns = max(self.clock_ns or 0, gateway_time_ns)
        up = state in SERVES_HISTORY
        why = ""
        if up and not self.up:
            if self.was_up:  # the session came back: bars were lost while it was away
                why = f"gateway {state} again"
            self.was_up = True
        self.up = up
        self.state = state
        return why


def history_request(symbol: str, bar_seconds: int, warmup_bars: int) -> HistoryRequest:
    """Enough history for `warmup_bars` bars of `bar_seconds` (one more: the newest may be unfinished)."""
    return HistoryRequest(
        symbol=symbol,
        bar_seconds=history_bar_size(bar_seconds),
        duration_seconds=(warmup_bars + 1) * bar_seconds,
    )
