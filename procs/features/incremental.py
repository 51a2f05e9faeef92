"""The feature set one closed bar at a time: constant work per bar per symbol, for the live path.

FeatureState keeps the accumulators (EMAs, Wilder averages, session sums) and short windows of closes,
volumes and log returns; it agrees with batch.compute_features to 1e-9 and can be seeded from its output, so
warm-up runs in polars and the live path continues here. Pure: it never validates bars or touches the bus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from procs.features.bars import session_day
from procs.features.featureset import (
    ATR_N,
    BB_K,
    BB_N,
    EMA_FAST,
    EMA_SLOW,
    FEATURES,
    FLAT_STD,
    MACD_FAST,
    MACD_SIGNAL,
    MACD_SLOW,
    RETURN_HORIZONS,
    RSI_N,
    RVOL_N,
    SMA_FAST,
    SMA_SLOW,
    VOLUME_Z_N,
    WARM_BARS,
    ema_alpha,
    wilder_alpha,
)
from shared.messages import Bar

NAN = math.nan
_KEEP = max(SMA_SLOW, BB_N, RETURN_HORIZONS[-1] + 1, VOLUME_Z_N, RVOL_N)
_A_FAST, _A_SLOW = ema_alpha(EMA_FAST), ema_alpha(EMA_SLOW)
_A_MACD_FAST, _A_MACD_SLOW, _A_SIGNAL = ema_alpha(MACD_FAST), ema_alpha(MACD_SLOW), ema_alpha(MACD_SIGNAL)
_A_RSI, _A_ATR = wilder_alpha(RSI_N), wilder_alpha(ATR_N)


def _ewm(prev: float | None, x: float, alpha: float) -> float:
    return x if prev is None else (1.0 - alpha) * prev + alpha * x


def _mean_std(window: list[float]) -> tuple[float, float]:
    """Two-pass mean and population standard deviation (no cancellation on large volumes)."""
    n = len(window)
    mean = sum(window) / n
    return mean, math.sqrt(sum((x - mean) ** 2 for x in window) / n)


def _z(x: float, window: list[float], scale: float = 1.0) -> float:
    mean, std = _mean_std(window)
    return 0.0 if std <= FLAT_STD * abs(mean) else (x - mean) / (scale * std)


def _trim(window: list[float]) -> None:
    if len(window) > 2 * _KEEP:  # amortised O(1): drop the old half now and then
        del window[:-_KEEP]


class FeatureState:
    """One symbol's features so far; update() takes the next closed bar and returns its feature values."""

    def __init__(self) -> None:
        self.n = 0
        self.closes: list[float] = []
        self.volumes: list[float] = []
        self.log_rets: list[float] = []
        self.ema_fast: float | None = None
        self.ema_slow: float | None = None
        self.ema_macd_fast: float | None = None
        self.ema_macd_slow: float | None = None
        self.signal: float | None = None
        self.macd_count = 0
        self.avg_gain: float | None = None
        self.avg_loss: float | None = None
        self.atr: float | None = None
        self.session = -1
        self.cum_pv = 0.0
        self.cum_v = 0.0
        self.last_start_ns: int | None = None

    @property
    def warm(self) -> bool:
        return self.n >= WARM_BARS

    def update(self, bar: Bar) -> dict[str, float]:
        """Fold in one closed bar; returns every feature (NaN while not yet defined)."""
        prev = self.closes[-1] if self.closes else None
        c = bar.close
        self.n += 1
        self.last_start_ns = bar.start_ns
        self.closes.append(c)
        self.volumes.append(bar.volume)
        out = dict.fromkeys(FEATURES, NAN)
        self._returns(out, prev, c)
        self._averages(out, c)
        self._wilder(out, bar, prev)
        self._macd(out, c)
        self._session_vwap(out, bar)
        for window in (self.closes, self.volumes, self.log_rets):
            _trim(window)
        return out

    def _returns(self, out: dict[str, float], prev: float | None, c: float) -> None:
        closes = self.closes
        for k in RETURN_HORIZONS:
            if len(closes) > k:
                out[f"ret_{k}"] = c / closes[-1 - k] - 1.0
        if prev is not None:
            r = math.log(c / prev)
            out["log_ret"] = r
            self.log_rets.append(r)
            if len(self.log_rets) >= RVOL_N:
                out["rvol_20"] = math.sqrt(sum(x * x for x in self.log_rets[-RVOL_N:]))

    def _averages(self, out: dict[str, float], c: float) -> None:
        n, closes = self.n, self.closes
        self.ema_fast = _ewm(self.ema_fast, c, _A_FAST)
        self.ema_slow = _ewm(self.ema_slow, c, _A_SLOW)
        if n >= SMA_FAST:
            out["sma_fast"] = sum(closes[-SMA_FAST:]) / SMA_FAST
        if n >= SMA_SLOW:
            out["sma_slow"] = sum(closes[-SMA_SLOW:]) / SMA_SLOW
        if n >= EMA_FAST:
            out["ema_fast"] = self.ema_fast
        if n >= EMA_SLOW:
            out["ema_slow"] = self.ema_slow
        if n >= BB_N:
            out["bb_z"] = _z(c, closes[-BB_N:], BB_K)
        if n >= VOLUME_Z_N:
            out["volume_z"] = _z(self.volumes[-1], self.volumes[-VOLUME_Z_N:])

    def _wilder(self, out: dict[str, float], bar: Bar, prev: float | None) -> None:
        high, low = bar.high, bar.low
        if prev is None:
            true_range = high - low
        else:
            true_range = max(high - low, abs(high - prev), abs(low - prev))
            d = bar.close - prev
            self.avg_gain = _ewm(self.avg_gain, max(d, 0.0), _A_RSI)
            self.avg_loss = _ewm(self.avg_loss, max(-d, 0.0), _A_RSI)
        self.atr = _ewm(self.atr, true_range, _A_ATR)
        if self.n >= ATR_N:
            out["atr_14"] = self.atr
        if self.n > RSI_N and self.avg_gain is not None and self.avg_loss is not None:
            gain, loss = self.avg_gain, self.avg_loss
            if loss == 0:
                out["rsi_14"] = 100.0 if gain > 0 else 50.0
            else:
                out["rsi_14"] = 100.0 - 100.0 / (1.0 + gain / loss)

    def _macd(self, out: dict[str, float], c: float) -> None:
        self.ema_macd_fast = _ewm(self.ema_macd_fast, c, _A_MACD_FAST)
        self.ema_macd_slow = _ewm(self.ema_macd_slow, c, _A_MACD_SLOW)
        if self.n < MACD_SLOW:
            return
        macd = self.ema_macd_fast - self.ema_macd_slow
        self.signal = _ewm(self.signal, macd, _A_SIGNAL)
        self.macd_count += 1
        out["macd"] = macd
        if self.macd_count >= MACD_SIGNAL:
            out["macd_signal"] = self.signal
            out["macd_hist"] = macd - self.signal

    def _session_vwap(self, out: dict[str, float], bar: Bar) -> None:
        day = session_day(bar.start_ns)
        if day != self.session:
            self.session, self.cum_pv, self.cum_v = day, 0.0, 0.0
        self.cum_pv += (bar.high + bar.low + bar.close) / 3.0 * bar.volume
        self.cum_v += bar.volume
        vwap = self.cum_pv / self.cum_v if self.cum_v > 0 else bar.close
        out["vwap"] = vwap
        out["vwap_dist"] = bar.close / vwap - 1.0

    @classmethod
    def from_batch(cls, rows: Sequence[Mapping[str, Any]], count: int | None = None) -> FeatureState:
        """The state after one symbol's batch rows (compute_features output, in order).

        `rows` may be just the tail (at least the last 31 rows) when `count` gives how many bars there were.
        """
        state = cls()
        if not rows:
            return state
        last = rows[-1]
        state.n = len(rows) if count is None else count
        state.last_start_ns = int(last["start_ns"])
        state.closes = [float(r["close"]) for r in rows[-_KEEP:]]
        state.volumes = [float(r["volume"]) for r in rows[-_KEEP:]]
        state.log_rets = [float(r["log_ret"]) for r in rows[-_KEEP:] if r["log_ret"] is not None]
        state.ema_fast, state.ema_slow = last["_ema_fast"], last["_ema_slow"]
        state.ema_macd_fast, state.ema_macd_slow = last["_ema_macd_fast"], last["_ema_macd_slow"]
        state.signal = last["_signal"]
        state.macd_count = max(0, state.n - MACD_SLOW + 1)
        state.avg_gain, state.avg_loss, state.atr = last["_avg_gain"], last["_avg_loss"], last["_atr"]
        state.session = int(last["_session"])
        state.cum_pv, state.cum_v = float(last["_cum_pv"]), float(last["_cum_v"])
        return state
