"""Aggregation of the Gateway's 5-second bars into BAR_SECONDS bars aligned to the exchange session.

Buckets are counted from the latest XNYS session boundary (the open, or the close for after-hours bars) and
cut at the next one, so 60-minute bars run 09:30-10:30 and a half day's last bar ends at 13:00. Sessions come
from shared/calendar.py (exchange_calendars). Pure: bars in, bars out; it never reads a clock and never validates (validate.py does).
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterable

from procs.features.featureset import EXCHANGE_TZ
from shared.calendar import session_boundaries
from shared.messages import Bar

NS = 1_000_000_000


def bucket_of(start_ns: int, bar_seconds: int) -> tuple[int, int]:
    """(start_ns, end_ns) of the bar_seconds bucket holding an instant, aligned to the session boundary."""
    width = bar_seconds * NS
    edges = session_boundaries()
    i = bisect.bisect_right(edges, start_ns) - 1
    if i < 0 or i + 1 >= len(edges):  # outside the calendar: plain clock alignment
        first = start_ns - start_ns % width
        return first, first + width
    anchor, next_edge = edges[i], edges[i + 1]
    first = anchor + (start_ns - anchor) // width * width
    return first, min(first + width, next_edge)


@functools.cache
def _ny_day_of_hour(hour: int) -> int:
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(hour * 3600, tz=UTC).astimezone(ZoneInfo(EXCHANGE_TZ))
    return (local.date() - date(1970, 1, 1)).days


def session_day(start_ns: int) -> int:
    """The exchange's calendar date of an instant, as days since 1970-01-01 (session VWAP resets on it)."""
    # time-zone offsets change on whole hours, so one lookup per UTC hour is exact
    return _ny_day_of_hour(start_ns // (3600 * NS))


class BarAggregator:
    """Builds one symbol's BAR_SECONDS bars from smaller bars that arrive in time order."""

    def __init__(self, symbol: str, bar_seconds: int) -> None:
        self.symbol = symbol
        self.bar_seconds = bar_seconds
        self._bucket: tuple[int, int] | None = None
        self._parts: list[Bar] = []

    @property
    def open_bucket_start(self) -> int | None:
        """Start of the bucket being filled, if any."""
        return self._bucket[0] if self._bucket else None

    def add(self, bar: Bar) -> list[Bar]:
        """Take one bar; return the bars this closes (the previous bucket, and this one if it is complete)."""
        if bar.bar_seconds > self.bar_seconds:
            raise ValueError(f"{bar.bar_seconds}s bars cannot make {self.bar_seconds}s bars")
        closed: list[Bar] = []
        if bar.bar_seconds == self.bar_seconds:  # already the right size (history, a bar file): as it is
            if self._bucket is not None and bar.start_ns >= self._bucket[0]:
                closed.append(self._close())
            return [*closed, bar]
        bucket = bucket_of(bar.start_ns, self.bar_seconds)
        if self._bucket is not None and bucket != self._bucket:
            if bucket[0] < self._bucket[0]:
                return closed  # older than the open bucket: the validator lets none through, stay safe
            closed.append(self._close())
        self._bucket = bucket
        self._parts.append(bar)
        if bar.start_ns + bar.bar_seconds * NS >= bucket[1]:
            closed.append(self._close())
        return closed

    def _close(self) -> Bar:
        assert self._bucket is not None
        parts, (start, end) = self._parts, self._bucket
        self._parts, self._bucket = [], None
        return merge_bars(self.symbol, start, (end - start) // NS, parts)


def merge_bars(symbol: str, start_ns: int, bar_seconds: int, parts: list[Bar]) -> Bar:
    """One bar from consecutive parts: first open, highest high, lowest low, last close, summed volume."""
    volume = math.fsum(p.volume for p in parts)
    # a part without a WAP counts at its close
    wap = math.fsum((p.wap or p.close) * p.volume for p in parts) / volume if volume > 0 else parts[-1].close
    return Bar(
        symbol=symbol,
        start_ns=start_ns,
        bar_seconds=bar_seconds,
        open=parts[0].open,
        high=max(p.high for p in parts),
        low=min(p.low for p in parts),
        close=parts[-1].close,
        volume=volume,
        wap=wap,
        count=sum(p.count for p in parts),
    )


# Bar sizes the Gateway's historical data offers (reqHistoricalData barSizeSetting), in seconds.
HISTORY_BAR_SIZES = (1, 5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 28800, 86400)  # fmt: skip


def history_bar_size(bar_seconds: int) -> int:
    """The bar size to ask the Gateway's history for: bar_seconds itself, else the largest size dividing it."""
    return max(size for size in HISTORY_BAR_SIZES if bar_seconds % size == 0)


def aggregate(bars: Iterable[Bar], bar_seconds: int) -> list[Bar]:
    """Closed BAR_SECONDS bars of time-ordered bars, per symbol (an unfinished last bucket is left out)."""
    out: list[Bar] = []
    aggregators: dict[str, BarAggregator] = {}
    for bar in bars:
        agg = aggregators.get(bar.symbol)
        if agg is None:
            agg = aggregators[bar.symbol] = BarAggregator(bar.symbol, bar_seconds)
        out.extend(agg.add(bar))
    return out
