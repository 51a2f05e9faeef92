"""Price paths on the simulator's 5-second grid, one UTC day per block: a seeded geometric random walk, or a
replayed bar series spread over the grid. Pure numpy: same inputs, same block, in any process.

It must never read a clock or keep state: the Market caches blocks, this module only computes them.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from procs.gateway_sim.market_hours import AFTER_HOURS_NS, DAY_NS, PRE_MARKET_NS, session_on, sessions_between

BUCKET_S = 5
BUCKET_NS = BUCKET_S * 10**9
BUCKETS_PER_DAY = DAY_NS // BUCKET_NS  # 17,280
ERA_DAYS = 256  # the walk is pinned to an independent anchor every 256 days, so any day is O(1) to compute
ERA_LOG_SD = 0.2  # spread of the anchors around the contract's start price (log scale)
_KIND_ERA, _KIND_DAYS, _KIND_INTRADAY = 1, 2, 3
# Shares of a session day's price variance and volume: pre-market 04:00-09:30, the opening gap,
# the regular session (U-shaped), after hours until 20:00. Overnight and closed days stand still.
_VAR_PRE, _VAR_GAP, _VAR_RTH, _VAR_POST = 0.04, 0.04, 0.86, 0.06
_VOL_PRE, _VOL_RTH, _VOL_POST = 0.02, 0.95, 0.03
_VOL_OPEN_AUCTION, _VOL_CLOSE_AUCTION = 0.015, 0.06  # parts of the regular session's volume


@dataclass(frozen=True, slots=True)
class SimBar:
    start_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    wap: float
    count: int


@dataclass(frozen=True, slots=True)
class WalkParams:
    """What one symbol's random walk depends on (hashable: blocks are cached by it)."""

    seed: int
    symbol: str
    start_price: float
    daily_vol: float
    avg_daily_volume: int
    tick: float
    tick_digits: int


@dataclass(frozen=True, slots=True)
class DayBlock:
    """One UTC day of 5-second buckets, prices already rounded to the tick. open[k+1] == close[k]."""

    day: int
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # int64 shares
    wap: np.ndarray

    def __post_init__(self) -> None:
        for column in (self.open, self.high, self.low, self.close, self.volume, self.wap):
            column.flags.writeable = False  # blocks are cached and shared: a reader must never change one


def symbol_key(symbol: str) -> int:
    """A stable 64-bit key for a symbol (Python's hash() differs per process)."""
    return int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "big")


def _rng(p: WalkParams, kind: int, index: int) -> np.random.Generator:
    return np.random.default_rng([p.seed % 2**64, symbol_key(p.symbol), kind, index + 2**40])


def round_to_tick(x: np.ndarray, tick: float, digits: int) -> np.ndarray:
    """Nearest tick, as the float closest to its decimal (so repr() prints 190.01), never below one tick."""
    return np.maximum(np.round(np.round(x / tick) * tick, digits), tick)


@functools.lru_cache(maxsize=4096)
def _era_anchor(p: WalkParams, era: int) -> float:
    return math.log(p.start_price) + ERA_LOG_SD * float(_rng(p, _KIND_ERA, era).standard_normal())


@functools.lru_cache(maxsize=1024)
def _era_day_anchors(p: WalkParams, era: int) -> np.ndarray:
    """Log price at 00:00 UTC of each day of the era (ERA_DAYS + 1 values): a Brownian bridge between anchors
    in business time, with no move on days without a session."""
    first = era * ERA_DAYS
    step_sd = p.daily_vol * sessions_between(first, first + ERA_DAYS - 1)
    var = np.concatenate(([0.0], np.cumsum(step_sd**2)))
    walk = np.concatenate(([0.0], np.cumsum(step_sd * _rng(p, _KIND_DAYS, era).standard_normal(ERA_DAYS))))
    a0, a1 = _era_anchor(p, era), _era_anchor(p, era + 1)
    tau = var / var[-1] if var[-1] > 0 else np.linspace(0.0, 1.0, ERA_DAYS + 1)
    return np.asarray(a0 + tau * (a1 - a0) + walk - tau * walk[-1])


def day_anchor(p: WalkParams, day: int) -> float:
    """Log price at 00:00 UTC of `day`."""
    era, offset = divmod(day, ERA_DAYS)
    return float(_era_day_anchors(p, era)[offset])


def _u_shape(n: int) -> np.ndarray:
    x = (np.arange(n) + 0.5) / max(n, 1)
    u = 1.0 + 3.0 * (2.0 * x - 1.0) ** 2
    return np.asarray(u / u.sum())


@dataclass(frozen=True, slots=True)
class DayProfile:
    """Where a session day's trading happens: buckets [first, stop) (04:00-20:00 New York) and each one's share
    of the day's price variance and volume (each summing to 1 over the window)."""

    first: int
    stop: int
    variance: np.ndarray
    volume: np.ndarray


@functools.lru_cache(maxsize=64)
def day_profile(day: int) -> DayProfile | None:
    """The trading profile of UTC day `day`; None when the market is closed all day."""
    session = session_on(day)
    if session is None:
        return None
    day_start = day * DAY_NS
    open_k = (session[0] - day_start) // BUCKET_NS
    close_k = (session[1] - day_start) // BUCKET_NS
    first = max(0, (session[0] - PRE_MARKET_NS - day_start) // BUCKET_NS)
    stop = min(BUCKETS_PER_DAY, (session[1] + AFTER_HOURS_NS - day_start) // BUCKET_NS)
    pre, rth, post = (
        slice(0, open_k - first),
        slice(open_k - first, close_k - first),
        slice(close_k - first, None),
    )
    u = _u_shape(close_k - open_k)
    var = np.zeros(stop - first)
    var[pre] = _VAR_PRE / max(open_k - first, 1)
    var[rth] = _VAR_RTH * u
    var[open_k - first] += _VAR_GAP
    var[post] = _VAR_POST / max(stop - close_k, 1)
    in_session = u * (1.0 - _VOL_OPEN_AUCTION - _VOL_CLOSE_AUCTION)
    in_session[0] += _VOL_OPEN_AUCTION
    in_session[-1] += _VOL_CLOSE_AUCTION
    vol = np.zeros(stop - first)
    vol[pre] = _VOL_PRE / max(open_k - first, 1)
    vol[rth] = _VOL_RTH * in_session
    vol[post] = _VOL_POST / max(stop - close_k, 1)
    return DayProfile(first, stop, var / var.sum(), vol / vol.sum())


def flat_block(day: int, price: float) -> DayBlock:
    """A day with no trading: the price stands still, nothing trades."""
    px = np.full(BUCKETS_PER_DAY, price)
    return DayBlock(day, px, px, px, px, np.zeros(BUCKETS_PER_DAY, dtype=np.int64), px)


def walk_block(p: WalkParams, day: int) -> DayBlock:
    """One day of the random walk: a bridge from this day's anchor to the next one in business time; random
    numbers are drawn only for the buckets that trade."""
    a0, a1 = day_anchor(p, day), day_anchor(p, day + 1)
    profile = day_profile(day)
    if profile is None:
        return flat_block(day, float(round_to_tick(np.array(math.exp(a0)), p.tick, p.tick_digits)))
    first, stop = profile.first, profile.stop
    z = _rng(p, _KIND_INTRADAY, day).standard_normal((4, stop - first))
    step_sd = p.daily_vol * np.sqrt(profile.variance)
    walk = np.concatenate(([0.0], np.cumsum(step_sd * z[0])))
    tau = np.concatenate(([0.0], np.cumsum(profile.variance)))
    tau[-1] = 1.0
    tick, digits = p.tick, p.tick_digits
    active = round_to_tick(np.exp(a0 + tau * (a1 - a0) + walk - tau * walk[-1]), tick, digits)
    path = np.empty(BUCKETS_PER_DAY + 1)  # price at each bucket boundary; still outside the window
    path[: first + 1] = active[0]
    path[first : stop + 1] = active
    path[stop:] = active[-1]
    open_, close = path[:-1], path[1:]
    high, low = np.maximum(open_, close), np.minimum(open_, close)
    top, bottom = high[first:stop], low[first:stop]
    wiggle = 0.5 * np.minimum(step_sd, np.roll(step_sd, -1))  # the opening gap jumps; it does not wiggle
    high[first:stop] = np.maximum(round_to_tick(top * np.exp(wiggle * np.abs(z[1])), tick, digits), top)
    low[first:stop] = np.minimum(round_to_tick(bottom * np.exp(-wiggle * np.abs(z[2])), tick, digits), bottom)
    volume = np.zeros(BUCKETS_PER_DAY, dtype=np.int64)
    volume[first:stop] = np.rint(p.avg_daily_volume * profile.volume * np.exp(0.6 * z[3] - 0.18))
    wap = np.round((open_ + high + low + close) / 4.0, 4)
    return DayBlock(day, open_, high, low, close, volume, wap)


@dataclass(frozen=True, slots=True)
class ReplaySeries:
    """One symbol's replayed bars as arrays; each bar lasts until the next one starts (at most one bar spacing)."""

    start_ns: np.ndarray
    end_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_bars(cls, bars: list[SimBar]) -> ReplaySeries:
        start = np.array([b.start_ns for b in bars], dtype=np.int64) // BUCKET_NS * BUCKET_NS
        spacing = int(np.median(np.diff(start))) if len(bars) > 1 else 60 * 10**9
        spacing = max(spacing, BUCKET_NS)
        end = np.minimum(np.append(start[1:], start[-1] + spacing), start + spacing)
        if spacing >= DAY_NS:  # daily bars trade during their session, not over 24 hours
            for i, s in enumerate(start):
                session = session_on(int(s) // DAY_NS)
                if session is not None:
                    start[i], end[i] = session[0], session[1]
        return cls(
            start_ns=start,
            end_ns=np.maximum(end, start + BUCKET_NS),
            open=np.array([b.open for b in bars]),
            high=np.array([b.high for b in bars]),
            low=np.array([b.low for b in bars]),
            close=np.array([b.close for b in bars]),
            volume=np.array([b.volume for b in bars], dtype=np.int64),
        )


def _bar_path(s: ReplaySeries, i: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Price at fraction f of bar i along open -> low -> high -> close (up bars) or open -> high -> low -> close."""
    up = s.close[i] >= s.open[i]
    first = np.where(up, s.low[i], s.high[i])
    second = np.where(up, s.high[i], s.low[i])
    segment = np.minimum(np.floor(f * 3), 2)
    a = np.choose(segment.astype(np.int64), [s.open[i], first, second])
    b = np.choose(segment.astype(np.int64), [first, second, s.close[i]])
    g = f * 3 - segment
    return np.asarray(a + (b - a) * g)


def replay_block(s: ReplaySeries, day: int, tick: float, digits: int) -> DayBlock:
    """One day of a replayed series on the 5-second grid: each bar's path spread over its buckets, its volume
    split evenly; gaps between bars hold the last close with no volume."""
    t = day * DAY_NS + np.arange(BUCKETS_PER_DAY, dtype=np.int64) * BUCKET_NS
    i = np.searchsorted(s.start_ns, t, side="right") - 1
    before = i < 0
    i = np.maximum(i, 0)
    inside = ~before & (t < s.end_ns[i])
    n = np.maximum((s.end_ns[i] - s.start_ns[i] + BUCKET_NS - 1) // BUCKET_NS, 1)
    j = np.where(inside, (t - s.start_ns[i]) // BUCKET_NS, 0)
    f0, f1 = j / n, (j + 1) / n
    idle = np.where(before, s.open[i], s.close[i])  # before the first bar / after a bar ended
    open_ = np.where(inside, _bar_path(s, i, f0), idle)
    close = np.where(inside, _bar_path(s, i, f1), idle)
    high, low = np.maximum(open_, close), np.minimum(open_, close)
    for corner, extreme_up, extreme_down in ((1, s.low, s.high), (2, s.high, s.low)):
        hit = inside & (3 * j <= corner * n) & (corner * n <= 3 * (j + 1))
        value = np.where(s.close[i] >= s.open[i], extreme_up[i], extreme_down[i])
        high = np.where(hit, np.maximum(high, value), high)
        low = np.where(hit, np.minimum(low, value), low)
    open_, close = round_to_tick(open_, tick, digits), round_to_tick(close, tick, digits)
    high = np.maximum(round_to_tick(high, tick, digits), np.maximum(open_, close))
    low = np.minimum(round_to_tick(low, tick, digits), np.minimum(open_, close))
    volume = np.where(inside, s.volume[i] // n + (j < s.volume[i] % n), 0).astype(np.int64)
    wap = np.round((open_ + high + low + close) / 4.0, 4)
    return DayBlock(day, open_, high, low, close, volume, wap)
