"""The simulated market: its clock, and prices, quotes and bars per symbol, all read off one deterministic
5-second path (random walk or replay), so quotes, live bars and history agree with each other.

It must never open a socket or sleep: the server asks it for values at a simulated time.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from procs.gateway_sim.contracts import SimContract
from procs.gateway_sim.market_hours import DAY_NS, default_sim_start, session_on
from procs.gateway_sim.pricepath import (
    BUCKET_NS,
    BUCKET_S,
    BUCKETS_PER_DAY,
    DayBlock,
    ReplaySeries,
    SimBar,
    WalkParams,
    replay_block,
    symbol_key,
    walk_block,
)
from procs.gateway_sim.replay import ReplayFileError, load_replay_file

__all__ = [
    "Market",
    "ReplayFileError",
    "SimBar",
    "SimClock",
    "default_sim_start",
    "load_replay_file",
]

WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK", "ADJUSTED_LAST")


class SimClock:
    """The simulator's "now": starts at `start` (None => real now) and runs `speed` times faster than real time."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.speed = speed
        self.start_ns = time.time_ns() if start is None else int(start.timestamp() * 1_000_000) * 1000
        self._mono0 = time.monotonic_ns()

    def now_ns(self) -> int:
        """UTC nanoseconds: start + real elapsed time x speed."""
        return self.start_ns + int((time.monotonic_ns() - self._mono0) * self.speed)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ns() / 1e9, tz=UTC)

    def real_seconds_until(self, sim_ns: int) -> float:
        """Real seconds to wait until the simulated time reaches `sim_ns` (0 when already past)."""
        return max(0.0, (sim_ns - self.now_ns()) / 1e9 / self.speed)


def _digits(tick: Decimal) -> int:
    exponent = tick.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 2


def _mix(x: int) -> int:
    """splitmix64: cheap deterministic noise for quote sizes (same input, same size, in any process)."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


class Market:
    """Prices of every contract at any simulated time. Day blocks are cached (LRU), so a live stream costs one
    dictionary lookup per quote and a 5,000-bar history a handful of numpy passes."""

    def __init__(
        self,
        contracts: Mapping[str, SimContract],
        seed: int = 42,
        replay: dict[str, list[SimBar]] | None = None,
        cache_days: int = 160,
        offset_ns: int = 0,
    ) -> None:
        self.contracts = dict(contracts)
        # Wall-clock mode: the prices at time t are the path's at t - offset_ns (a multiple of 5 s), so a
        # simulator started at night trades a real session's prices under real timestamps. 0: the path's own time.
        self.offset_ns = offset_ns
        self.seed = seed
        self._replay = {s.upper(): ReplaySeries.from_bars(b) for s, b in (replay or {}).items() if b}
        self._params: dict[str, WalkParams] = {}
        self._blocks: OrderedDict[tuple[str, int], DayBlock] = OrderedDict()
        self._cache_days = cache_days
        self._daily: dict[tuple[str, int, bool], SimBar | None] = {}
        # `gap SYMBOL PERCENT`: from each (path time, factor) on, the symbol's trades and quotes are scaled
        self._gaps: dict[str, list[tuple[int, float]]] = {}

    def gap(self, symbol: str, percent: float, t_ns: int) -> None:
        """Move `symbol`'s price by `percent` at once from simulated time `t_ns` on (an overnight gap)."""
        self._gaps.setdefault(symbol, []).append((t_ns - self.offset_ns, 1.0 + percent / 100.0))

    def _gap_factor(self, symbol: str, t_ns: int) -> float:
        factor = 1.0
        for at, f in self._gaps.get(symbol, ()):
            if t_ns >= at:
                factor *= f
        return factor

    @property
    def symbols(self) -> set[str]:
        return set(self.contracts) | set(self._replay)

    def is_replayed(self, symbol: str) -> bool:
        return symbol in self._replay

    def walk_params(self, symbol: str) -> WalkParams:
        params = self._params.get(symbol)
        if params is None:
            contract = self.contracts.get(symbol)
            if contract is None and symbol not in self._replay:
                raise KeyError(f"unknown symbol {symbol!r}")
            c = contract or SimContract(con_id=0, symbol=symbol)
            tick = c.min_tick
            params = WalkParams(
                self.seed, symbol, c.start_price, c.daily_vol, c.avg_daily_volume, float(tick), _digits(tick)
            )
            self._params[symbol] = params
        return params

    def block(self, symbol: str, day: int, keep: bool = True) -> DayBlock:
        """The 5-second buckets of UTC day `day` (cached when `keep`)."""
        key = (symbol, day)
        block = self._blocks.get(key)
        if block is not None:
            self._blocks.move_to_end(key)
            return block
        p = self.walk_params(symbol)
        series = self._replay.get(symbol)
        block = walk_block(p, day) if series is None else replay_block(series, day, p.tick, p.tick_digits)
        if keep:
            self._blocks[key] = block
            if len(self._blocks) > self._cache_days:
                self._blocks.popitem(last=False)
        return block

    def price_at(self, symbol: str, t_ns: int) -> float:
        """Last trade price at `t_ns` (simulated time)."""
        return self._price(symbol, t_ns - self.offset_ns)

    def _price(self, symbol: str, t_ns: int) -> float:
        """Last trade price at `t_ns` on the path: within a 5-second bar the price runs open -> low -> high -> close (or via
        high first on a down bar), so every price seen lies inside that bar."""
        k, into = divmod(t_ns, BUCKET_NS)
        day, j = divmod(k, BUCKETS_PER_DAY)
        b = self.block(symbol, day)
        o, h, lo, c = float(b.open[j]), float(b.high[j]), float(b.low[j]), float(b.close[j])
        first, second = (lo, h) if c >= o else (h, lo)
        f = 3.0 * into / BUCKET_NS
        if f < 1.0:
            x = o + (first - o) * f
        elif f < 2.0:
            x = first + (second - first) * (f - 1.0)
        else:
            x = second + (c - second) * (f - 2.0)
        p = self.walk_params(symbol)
        price = min(max(round(round(x / p.tick) * p.tick, p.tick_digits), lo), h)
        if symbol in self._gaps:
            price = max(
                p.tick, round(round(price * self._gap_factor(symbol, t_ns) / p.tick) * p.tick, p.tick_digits)
            )
        return price

    def _buckets(self, symbol: str, k0: int, k1: int) -> tuple[np.ndarray, ...]:
        """(open, high, low, close, volume, wap) of buckets k0..k1-1, across day blocks."""
        parts: list[tuple[np.ndarray, ...]] = []
        k = k0
        while k < k1:
            day, j = divmod(k, BUCKETS_PER_DAY)
            stop = min(BUCKETS_PER_DAY, j + (k1 - k))
            b = self.block(symbol, day)
            parts.append(
                (
                    b.open[j:stop],
                    b.high[j:stop],
                    b.low[j:stop],
                    b.close[j:stop],
                    b.volume[j:stop],
                    b.wap[j:stop],
                )
            )
            k += stop - j
        if len(parts) == 1:
            return parts[0]
        if not parts:
            empty = np.empty(0)
            return empty, empty, empty, empty, np.empty(0, dtype=np.int64), empty
        return tuple(np.concatenate(column) for column in zip(*parts, strict=True))

    def bar(self, symbol: str, start_ns: int, seconds: int) -> SimBar:
        """The bar of the 5-second buckets starting in [start_ns, start_ns + seconds); start_ns is floored to
        the 5-second grid, `seconds` rounded up to a multiple of 5."""
        k0 = (start_ns - self.offset_ns) // BUCKET_NS
        n = max(1, -(-seconds // BUCKET_S))
        bar = _aggregate(np.array([k0 * BUCKET_NS]), self._buckets(symbol, k0, k0 + n), np.array([0]))[0]
        return self._shifted(bar)

    def _shifted(self, bar: SimBar) -> SimBar:
        """A bar of the path, labelled in simulated time."""
        return dataclasses.replace(bar, start_ns=bar.start_ns + self.offset_ns) if self.offset_ns else bar

    def history(
        self,
        symbol: str,
        end_ns: int,
        duration_s: int,
        bar_seconds: int,
        what: str = "TRADES",
        rth_only: bool = False,
    ) -> list[SimBar]:
        """Bars of `bar_seconds` (a multiple of 5 dividing a day, or 86400 for daily bars, one per session day)
        starting in [end_ns - duration_s, end_ns), built from the buckets complete at `end_ns`; bars in which
        nothing traded are left out, as IB does. Raises ValueError for a bar size or whatToShow it lacks."""
        if what not in WHAT_TO_SHOW:
            raise ValueError(f"whatToShow {what!r} is not supported (use one of {', '.join(WHAT_TO_SHOW)})")
        if bar_seconds <= 0 or bar_seconds % BUCKET_S or (bar_seconds < 86_400 and 86_400 % bar_seconds):
            raise ValueError(f"bar size of {bar_seconds} s is not supported")
        if bar_seconds >= 86_400 and bar_seconds != 86_400:
            raise ValueError("bar sizes above 1 day are not supported")
        bar_ns = bar_seconds * 10**9
        end_ns -= self.offset_ns
        first_bar = -(-(end_ns - duration_s * 10**9) // bar_ns)  # the first whole bar inside the duration
        last_bucket = end_ns // BUCKET_NS  # buckets before this one are complete
        if bar_seconds == 86_400:
            bars = self._daily_bars(symbol, first_bar, last_bucket, rth_only)
        else:
            bars = self._intraday_bars(symbol, first_bar * bar_ns, last_bucket, bar_ns, rth_only)
        p = self.walk_params(symbol)
        return [self._shifted(_as_shown(b, what, p.tick, p.tick_digits)) for b in bars if b.volume > 0]

    def _intraday_bars(
        self, symbol: str, start_ns: int, last_bucket: int, bar_ns: int, rth: bool
    ) -> list[SimBar]:
        k0 = start_ns // BUCKET_NS
        if k0 >= last_bucket:
            return []
        columns = self._buckets(symbol, k0, last_bucket)
        k = np.arange(k0, last_bucket, dtype=np.int64)
        if rth:  # only regular-session buckets; a bar cut by the open is labelled with the open, as IB does
            keep = _session_mask(k)
            columns = tuple(c[keep] for c in columns)
            k = k[keep]
        if len(k) == 0:
            return []
        bar_of = (k - k0) // (bar_ns // BUCKET_NS)
        boundaries = np.flatnonzero(np.diff(bar_of, prepend=-1))
        starts = np.maximum(start_ns + bar_of[boundaries] * bar_ns, k[boundaries] * BUCKET_NS)
        return _aggregate(starts, columns, boundaries, keep_empty=False)

    def _daily_bars(self, symbol: str, first_day: int, last_bucket: int, rth: bool) -> list[SimBar]:
        bars = []
        for day in range(first_day, last_bucket // BUCKETS_PER_DAY + 1):
            session = session_on(day)
            if session is None:
                continue
            k0, k1 = day * BUCKETS_PER_DAY, (day + 1) * BUCKETS_PER_DAY
            if rth:
                k0, k1 = session[0] // BUCKET_NS, session[1] // BUCKET_NS
            complete = k1 <= last_bucket
            cached = self._daily.get((symbol, day, rth)) if complete else None
            if cached is None:
                k1 = min(k1, last_bucket)
                if k1 <= k0:
                    continue
                cached = self._day_bar(symbol, day, k0, k1)
                if complete:
                    self._daily[(symbol, day, rth)] = cached
            bars.append(cached)
        return bars

    def _day_bar(self, symbol: str, day: int, k0: int, k1: int) -> SimBar:
        b = self.block(symbol, day, keep=(symbol, day) in self._blocks)
        j0, j1 = k0 - day * BUCKETS_PER_DAY, k1 - day * BUCKETS_PER_DAY
        columns = (b.open[j0:j1], b.high[j0:j1], b.low[j0:j1], b.close[j0:j1], b.volume[j0:j1], b.wap[j0:j1])
        return _aggregate(np.array([day * DAY_NS]), columns, np.array([0]))[0]

    def day_bar(self, symbol: str, t_ns: int) -> SimBar:
        """Today so far for the tick stream: open, high, low and last of the regular session once it has opened
        (of the UTC day before that); volume of the whole UTC day, the current 5-second bucket included."""
        t_ns -= self.offset_ns
        k = t_ns // BUCKET_NS
        day, j = divmod(k, BUCKETS_PER_DAY)
        b = self.block(symbol, day)
        session = session_on(day)
        first = 0
        if session is not None and t_ns >= session[0]:
            first = min(j, (session[0] - day * DAY_NS) // BUCKET_NS)
        last = self._price(symbol, t_ns)
        high = max(float(b.high[first:j].max()), last) if j > first else last
        low = min(float(b.low[first:j].min()), last) if j > first else last
        volume = int(b.volume[: j + 1].sum())
        open_ = float(b.open[first])
        start = day * DAY_NS + first * BUCKET_NS + self.offset_ns
        return SimBar(start, open_, high, low, last, volume, last, volume // 100)

    def prev_close(self, symbol: str, t_ns: int) -> float:
        """The close of the previous UTC day (for tick type 9)."""
        day = (t_ns - self.offset_ns) // DAY_NS
        return float(self.block(symbol, day - 1).close[-1])

    def quote(self, symbol: str, t_ns: int) -> tuple[float, float, float, int, int, int]:
        """(bid, ask, last, bidSize, askSize, lastSize): a one- or two-tick spread around the last price, and
        sizes that follow the traded volume. Deterministic per quarter-second."""
        t_ns -= self.offset_ns
        last = self._price(symbol, t_ns)
        p = self.walk_params(symbol)
        noise = _mix(symbol_key(symbol) ^ (t_ns // 250_000_000))
        spread = 1 + (noise & 3 == 0)
        below = (noise >> 2) % (spread + 1)
        bid = max(round(last - below * p.tick, p.tick_digits), p.tick)
        ask = round(bid + spread * p.tick, p.tick_digits)
        k = t_ns // BUCKET_NS
        volume = int(self.block(symbol, k // BUCKETS_PER_DAY).volume[k % BUCKETS_PER_DAY])
        last_size = max(100, (volume // 20) // 100 * 100) if volume else 0
        bid_size = 100 * (1 + (noise >> 8) % 30)
        ask_size = 100 * (1 + (noise >> 16) % 30)
        return bid, ask, last, bid_size, ask_size, last_size


def _session_mask(k: np.ndarray) -> np.ndarray:
    """True for the buckets (absolute 5-second indices, ascending) inside a regular session."""
    t = k * BUCKET_NS
    keep = np.zeros(len(k), dtype=bool)
    for day in range(int(t[0]) // DAY_NS, int(t[-1]) // DAY_NS + 1):
        session = session_on(day)
        if session is not None:
            keep |= (t >= session[0]) & (t < session[1])
    return keep


def _aggregate(
    starts: np.ndarray, columns: tuple[np.ndarray, ...], boundaries: np.ndarray, keep_empty: bool = True
) -> list[SimBar]:
    """Bars from bucket columns split at `boundaries` (offsets into the columns), labelled with `starts`: open of
    the first bucket, highest high, lowest low, close of the last, summed volume, volume-weighted WAP."""
    open_, high, low, close, volume, wap = columns
    last = np.append(boundaries[1:], len(open_)) - 1
    volumes = np.add.reduceat(volume, boundaries)
    traded = np.add.reduceat(wap * volume, boundaries)
    closes = close[last]
    waps = np.where(volumes > 0, np.round(traded / np.maximum(volumes, 1), 4), closes)
    counts = np.add.reduceat(np.where(volume > 0, np.maximum(volume // 100, 1), 0), boundaries)
    columns_out: tuple[np.ndarray, ...] = (
        starts,
        open_[boundaries],
        np.maximum.reduceat(high, boundaries),
        np.minimum.reduceat(low, boundaries),
        closes,
        volumes,
        waps,
        counts,
    )
    if not keep_empty:
        traded_any = volumes > 0
        columns_out = tuple(c[traded_any] for c in columns_out)
    return [SimBar(*row) for row in zip(*(c.tolist() for c in columns_out), strict=True)]


def _as_shown(bar: SimBar, what: str, tick: float, digits: int) -> SimBar:
    """TRADES bars as they are; quote-based bars shifted by a tick, with no volume (IB sends -1)."""
    if what in ("TRADES", "ADJUSTED_LAST"):
        return bar
    shift = {"MIDPOINT": 0.0, "BID": -tick, "ASK": tick}[what]
    o, h, lo, c = (max(round(x + shift, digits), tick) for x in (bar.open, bar.high, bar.low, bar.close))
    return SimBar(bar.start_ns, o, h, lo, c, -1, -1.0, -1)
