"""5-second bars become BAR_SECONDS bars aligned to the exchange session (XNYS opens, closes, half days)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from procs.features.bars import BarAggregator, aggregate, bucket_of, history_bar_size, session_day
from procs.features.synthetic import random_walk_bars
from shared.messages import Bar

NS = 10**9


def _ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * NS


def test_twelve_five_second_bars_make_one_minute_bar_with_the_right_ohlcv() -> None:
    parts = random_walk_bars("AAPL", 12, bar_seconds=5, seed=1)
    (bar,) = aggregate(parts, 60)
    assert bar.start_ns == parts[0].start_ns and bar.bar_seconds == 60
    assert bar.open == parts[0].open and bar.close == parts[-1].close
    assert bar.high == max(p.high for p in parts) and bar.low == min(p.low for p in parts)
    assert bar.volume == pytest.approx(sum(p.volume for p in parts))
    assert bar.count == sum(p.count for p in parts)


def test_the_bar_closes_with_its_last_part_not_one_bar_later() -> None:
    parts = random_walk_bars("AAPL", 12, bar_seconds=5, seed=1)
    agg = BarAggregator("AAPL", 60)
    assert all(agg.add(p) == [] for p in parts[:11])
    assert len(agg.add(parts[11])) == 1


def test_an_unfinished_bar_closes_when_the_next_bucket_starts() -> None:
    parts = random_walk_bars("AAPL", 24, bar_seconds=5, seed=1)
    agg = BarAggregator("AAPL", 60)
    for p in parts[:6]:  # half a minute, then the feed skips to the next minute
        agg.add(p)
    closed = agg.add(parts[12])
    assert len(closed) == 1 and closed[0].close == parts[5].close and closed[0].start_ns == parts[0].start_ns


def test_hour_bars_are_aligned_to_the_0930_open_not_the_clock_hour() -> None:
    open_ = _ns(2024, 3, 4, 14, 30)  # 09:30 New York
    assert bucket_of(open_ + 50 * 60 * NS, 3600) == (open_, open_ + 3600 * NS)
    assert bucket_of(open_ + 65 * 60 * NS, 3600)[0] == open_ + 3600 * NS


def test_the_last_bar_of_a_half_day_ends_at_the_early_close() -> None:
    # 2024-11-29 (day after Thanksgiving) closes at 13:00 New York = 18:00 UTC
    start, end = bucket_of(_ns(2024, 11, 29, 17, 45), 3600)
    assert start == _ns(2024, 11, 29, 17, 30) and end == _ns(2024, 11, 29, 18, 0)


def test_after_hours_bars_count_from_the_close() -> None:
    close = _ns(2024, 3, 4, 21, 0)  # 16:00 New York
    assert bucket_of(close + 10 * 60 * NS, 3600) == (close, close + 3600 * NS)


def test_a_bar_already_of_the_right_size_passes_through() -> None:
    minute = random_walk_bars("AAPL", 3, bar_seconds=60, seed=2)
    assert aggregate(minute, 60) == minute


def test_session_day_is_the_new_york_date_across_daylight_saving() -> None:
    # 2024-03-10 is the spring-forward Sunday; 03:59 UTC on the 11th is 23:59 EDT on the 10th
    assert session_day(_ns(2024, 3, 11, 3, 59)) == (datetime(2024, 3, 10) - datetime(1970, 1, 1)).days
    assert session_day(_ns(2024, 3, 11, 4, 0)) == (datetime(2024, 3, 11) - datetime(1970, 1, 1)).days
    assert session_day(_ns(2024, 1, 11, 4, 59)) == (datetime(2024, 1, 10) - datetime(1970, 1, 1)).days


def test_history_is_asked_in_a_size_the_gateway_offers() -> None:
    assert history_bar_size(60) == 60
    assert history_bar_size(90) == 30
    assert history_bar_size(3600) == 3600


def test_a_bar_larger_than_the_target_is_refused() -> None:
    agg = BarAggregator("AAPL", 60)
    big = Bar(symbol="AAPL", start_ns=0, bar_seconds=300, open=1, high=1, low=1, close=1, volume=1)
    with pytest.raises(ValueError, match="300s bars cannot make 60s bars"):
        agg.add(big)
