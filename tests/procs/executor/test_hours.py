"""Market hours from the XNYS calendar (holidays, early closes, extended hours) and the simulator's clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from procs.executor.hours import MarketClock, may_trade, session_at, trading_day


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


@pytest.mark.parametrize(
    ("when_utc", "session"),
    [
        ("2026-11-20 15:00", "regular"),  # Friday 10:00 New York
        ("2026-11-20 14:29", "pre"),  # 09:29
        ("2026-11-20 09:00", "pre"),  # 04:00
        ("2026-11-20 08:59", "closed"),  # 03:59
        ("2026-11-20 21:00", "post"),  # 16:00, winter time
        ("2026-11-21 00:59", "post"),  # 19:59 New York is already Saturday in UTC
        ("2026-11-21 01:00", "closed"),  # 20:00
        ("2026-11-21 15:00", "closed"),  # Saturday
        ("2026-11-26 15:00", "closed"),  # Thanksgiving
        ("2026-11-27 17:59", "regular"),  # the day after: early close at 13:00 New York
        ("2026-11-27 18:00", "post"),
        ("2026-11-27 22:00", "closed"),  # after-hours end 17:00 on an early-close day
        ("2026-07-03 15:00", "closed"),  # Independence Day observed (the 4th is a Saturday)
        ("2026-07-06 13:30", "regular"),  # summer time: 09:30 New York = 13:30 UTC
    ],
)
def test_sessions_follow_the_exchange_calendar(when_utc: str, session: str) -> None:
    assert session_at(ns(when_utc)) == session


def test_may_trade_by_mode() -> None:
    assert may_trade("regular", "regular") and not may_trade("pre", "regular")
    assert may_trade("post", "extended") and not may_trade("closed", "extended")
    assert may_trade("closed", "always")


def test_trading_day_is_the_new_york_date() -> None:
    assert trading_day(ns("2026-11-21 00:30")) == "2026-11-20"  # 19:30 Friday in New York
    assert trading_day(ns("2026-11-20 15:00")) == "2026-11-20"


def test_the_wall_clock_is_the_market_clock_for_a_real_gateway() -> None:
    assert MarketClock(None).now_ns(123) == 123


def test_the_simulator_clock_is_unknown_until_anchored_then_runs_at_its_speed() -> None:
    clock = MarketClock(speed=10.0)
    assert clock.now_ns(10**18) is None
    market = ns("2026-11-20 15:00")
    clock.anchor(market, real_ns=10**18)
    assert clock.now_ns(10**18 + 2 * 10**9) == market + 20 * 10**9
    clock.anchor(0)  # a report without a time changes nothing
    assert clock.now_ns(10**18) == market


def test_a_stale_gateway_time_does_not_drag_the_clock_back_but_a_reset_does() -> None:
    clock = MarketClock(speed=10.0)
    market = ns("2026-11-20 15:00")
    clock.anchor(market, real_ns=10**18)
    later = 10**18 + 5 * 10**9  # 5 s later the estimate is 50 s on
    clock.anchor(market + 10 * 10**9, real_ns=later)  # a heartbeat time from 4 s ago
    assert clock.now_ns(later) == market + 50 * 10**9
    clock.anchor(market + 60 * 10**9, real_ns=later)  # ahead of the estimate: taken
    assert clock.now_ns(later) == market + 60 * 10**9
    clock.anchor(market - 3600 * 10**9, real_ns=later)  # an hour behind: the simulator was restarted
    assert clock.now_ns(later) == market - 3600 * 10**9
