"""The feature worker's core: live 5-second bars in, one FeatureVector per symbol per closed bar out.

Warm-up (at start, after a gap, after a new bridge epoch) merges the bridge's history with the bars already
seen live, computes the feature set in polars and seeds each symbol's incremental state from it. Pure: plain
values in and out; it never touches the bus, never logs and never reads a clock (callers pass `now_ns`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from procs.features.bars import NS, aggregate
from procs.features.batch import bars_frame, compute_features
from procs.features.incremental import FeatureState
from procs.features.intake import BarIntake
from procs.features.validate import BarValidator, RejectCounts
from shared.messages import Bar, FeatureVector

# Closed bars kept per symbol, so a warm-up can splice the live bars history does not hold yet (4 hours of
# 1-minute bars). Not WARMUP_BARS: the warm-up brings those, and 20 symbols x 5,000 bars would cost 35 MB.
TAPE_BARS = 240
SEED_ROWS = 64  # batch rows an incremental state is seeded from (the longest window is 30)


@dataclass(frozen=True, slots=True)
class WarmupResult:
    symbol: str
    history_bars: int  # bars the bridge sent
    used_bars: int  # bars the state was seeded from (history + live)
    rejected: int
    dropped_unfinished: int
    warm: bool


def vector_of(bar: Bar, values: dict[str, float], warm: bool) -> FeatureVector:
    """The published form of one symbol's features at the close of `bar`."""
    return FeatureVector(
        symbol=bar.symbol,
        end_ns=bar.start_ns + bar.bar_seconds * NS,
        bar_seconds=bar.bar_seconds,
        close=bar.close,
        warm=warm,
        values=values,
    )


class FeatureWorker:
    """Every configured symbol's intake, tape of recent closed bars, and incremental feature state."""

    def __init__(
        self, symbols: Sequence[str], bar_seconds: int, spike_sigmas: float, warmup_bars: int
    ) -> None:
        self.symbols = tuple(symbols)
        self.bar_seconds = bar_seconds
        self.spike_sigmas = spike_sigmas
        self.warmup_bars = warmup_bars
        self.intake = BarIntake(bar_seconds, spike_sigmas)
        self.history_rejects = RejectCounts()
        self.states = {s: FeatureState() for s in self.symbols}
        self.tapes: dict[str, deque[Bar]] = {s: deque(maxlen=TAPE_BARS) for s in self.symbols}
        self.counters = {"bars_in": 0, "bars": 0, "vectors": 0, "ignored": 0, "covered_by_history": 0}

    def on_bar(self, bar: Bar) -> list[FeatureVector]:
        """Take one live bar; the vectors of the BAR_SECONDS bars it closed (none if it was rejected)."""
        self.intake.last_reject = None
        if bar.symbol not in self.states or bar.bar_seconds > self.bar_seconds:
            self.counters["ignored"] += 1
            return []
        self.counters["bars_in"] += 1
        vectors = []
        for closed in self.intake.add(bar):
            state = self.states[bar.symbol]
            if state.last_start_ns is not None and closed.start_ns <= state.last_start_ns:
                self.counters["covered_by_history"] += 1  # the warm-up already holds this bar
                continue
            self.counters["bars"] += 1
            self.tapes[bar.symbol].append(closed)
            vectors.append(vector_of(closed, state.update(closed), state.warm))
        self.counters["vectors"] += len(vectors)
        return vectors

    def warm_up(self, symbol: str, history: Sequence[Bar], now_ns: int | None) -> WarmupResult:
        """Seed one symbol from the bridge's history (oldest first) spliced with the bars seen live.

        A history bar that may still be forming (ends after `now_ns`, or at/after the bar being built live)
        is left out; with no clock at all (`now_ns` None) the last history bar is left out to be safe.
        """
        good, rejected = self._valid_history(symbol, history)
        finished = self._finished(symbol, good, now_ns)
        unfinished = len(good) - len(finished)
        kept = finished[-self.warmup_bars :]
        state, tape = self.states[symbol], self.tapes[symbol]
        if not kept and state.n > 0:  # history brought nothing usable: keep the state we have
            return WarmupResult(symbol, len(history), 0, rejected, unfinished, state.warm)
        last_start = kept[-1].start_ns if kept else None
        merged = kept + [b for b in tape if last_start is None or b.start_ns > last_start]
        state = FeatureState()
        if merged:
            frame = compute_features(bars_frame(merged))
            state = FeatureState.from_batch(frame.tail(SEED_ROWS).to_dicts(), count=frame.height)
        self.states[symbol] = state
        tape.clear()
        tape.extend(merged[-TAPE_BARS:])
        return WarmupResult(symbol, len(history), len(merged), rejected, unfinished, state.warm)

    def _valid_history(self, symbol: str, history: Sequence[Bar]) -> tuple[list[Bar], int]:
        validator = BarValidator(self.spike_sigmas)
        good: list[Bar] = []
        rejected = 0
        for bar in history:
            if bar.symbol != symbol or bar.bar_seconds > self.bar_seconds:
                rejected += 1
                continue
            bad = validator.check(bar)
            if bad is None:
                good.append(bar)
            else:
                rejected += 1
                self.history_rejects.add(bad)
        if good and good[0].bar_seconds < self.bar_seconds:
            good = aggregate(good, self.bar_seconds)
        return good, rejected

    def _finished(self, symbol: str, bars: list[Bar], now_ns: int | None) -> list[Bar]:
        if now_ns is None:
            return bars[:-1]
        building = self.intake.open_bucket_start(symbol)
        return [
            b
            for b in bars
            if b.start_ns + b.bar_seconds * NS <= now_ns and (building is None or b.start_ns < building)
        ]

    def rejects(self) -> dict[str, int]:
        """Live and history rejects by reason."""
        live, hist = self.intake.rejects.by_reason, self.history_rejects.by_reason
        return {reason: live.get(reason, 0) + hist.get(reason, 0) for reason in live.keys() | hist.keys()}
