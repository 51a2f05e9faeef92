"""Bar validation: the gate every bar passes before it can reach the features, and so a strategy.

A bar is rejected for one named reason (non-finite, negative, OHLC inconsistent, out of order, duplicate,
spike); the caller counts rejects by reason. Pure and per symbol: it never drops a bar silently, never raises
on bad data and never reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from shared.messages import Bar

NON_FINITE = "non_finite"
NEGATIVE = "negative"
OHLC_INCONSISTENT = "ohlc_inconsistent"
OUT_OF_ORDER = "out_of_order"
DUPLICATE = "duplicate"
SPIKE = "spike"
REASONS = (NON_FINITE, NEGATIVE, OHLC_INCONSISTENT, OUT_OF_ORDER, DUPLICATE, SPIKE)

SPIKE_WINDOW = 100  # accepted returns the spike sigma is estimated from
SPIKE_MIN_SAMPLES = 20  # no spike test before this many returns
SPIKE_SIGMA_FLOOR = 0.0005  # 5 bp: a flat overnight tape must not make every opening move a "spike"
SPIKE_CONFIRM = 3  # the third "spike" in a row at the new level is a level shift, and is accepted


@dataclass(frozen=True, slots=True)
class Reject:
    """Why a bar was refused: `reason` is one of REASONS, `detail` is one line for the log."""

    reason: str
    detail: str


def check_values(bar: Bar) -> Reject | None:
    """The checks a single bar can fail on its own: non-finite, negative, OHLC inconsistent."""
    values = (bar.open, bar.high, bar.low, bar.close, bar.volume)
    if not all(math.isfinite(v) for v in values):
        return Reject(NON_FINITE, f"non-finite value in OHLCV {values}")
    if min(bar.open, bar.high, bar.low, bar.close) <= 0 or bar.volume < 0:
        return Reject(NEGATIVE, f"negative or zero price, or negative volume, in OHLCV {values}")
    if bar.high < max(bar.open, bar.close, bar.low) or bar.low > min(bar.open, bar.close, bar.high):
        return Reject(
            OHLC_INCONSISTENT,
            f"high {bar.high:g} / low {bar.low:g} do not bracket open {bar.open:g} and close {bar.close:g}",
        )
    return None


@dataclass
class BarValidator:
    """One symbol's stream of bars: order, duplicates and spikes need what came before."""

    spike_sigmas: float = 8.0
    last_start_ns: int | None = None
    last_close: float | None = None
    spikes_in_a_row: int = 0
    level_shifts: int = 0
    _returns: deque[float] = field(default_factory=lambda: deque(maxlen=SPIKE_WINDOW))

    def check(self, bar: Bar) -> Reject | None:
        """None when the bar is good (and is then remembered); else the reason it was refused."""
        bad = check_values(bar) or self._check_order(bar) or self._check_spike(bar)
        if bad is None:
            self._accept(bar)
        return bad

    def _check_order(self, bar: Bar) -> Reject | None:
        last = self.last_start_ns
        if last is None or bar.start_ns > last:
            return None
        if bar.start_ns == last:
            return Reject(DUPLICATE, f"second bar starting at {bar.start_ns}")
        return Reject(OUT_OF_ORDER, f"bar starting at {bar.start_ns} arrived after one starting at {last}")

    def _check_spike(self, bar: Bar) -> Reject | None:
        if self.last_close is None or len(self._returns) < SPIKE_MIN_SAMPLES:
            return None
        move = math.log(bar.close / self.last_close)
        sigma = max(_std(self._returns), SPIKE_SIGMA_FLOOR)
        if abs(move) <= self.spike_sigmas * sigma:
            self.spikes_in_a_row = 0
            return None
        self.spikes_in_a_row += 1
        if self.spikes_in_a_row >= SPIKE_CONFIRM:  # the price stayed there: a real move, start afresh
            self.spikes_in_a_row = 0
            self.level_shifts += 1
            self._returns.clear()
            return None
        return Reject(SPIKE, f"close {bar.close:g} moved {move / sigma:+.1f} sigma from {self.last_close:g}")

    def _accept(self, bar: Bar) -> None:
        if self.last_close is not None:
            self._returns.append(math.log(bar.close / self.last_close))
        self.last_start_ns = bar.start_ns
        self.last_close = bar.close


def _std(values: deque[float]) -> float:
    n = len(values)
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / n)


@dataclass
class RejectCounts:
    """Rejects by reason, for the heartbeat."""

    by_reason: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    def add(self, reject: Reject) -> None:
        self.by_reason[reject.reason] = self.by_reason.get(reject.reason, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())
