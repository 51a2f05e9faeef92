"""The one exchange calendar: holidays and early closes from exchange_calendars, and features' bars read it."""

from __future__ import annotations

from datetime import UTC, datetime

from procs.features.bars import bucket_of
from shared.calendar import DAY_NS, NS, session_boundaries, sessions_by_day


def _ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * NS


def test_holidays_are_closed_and_a_half_day_closes_at_one() -> None:
    days = sessions_by_day()
    assert _ns(2024, 12, 25) // DAY_NS not in days  # Christmas
    assert days[_ns(2023, 11, 24) // DAY_NS] == (
        _ns(2023, 11, 24, 14, 30),
        _ns(2023, 11, 24, 18, 0),
    )  # 13:00 ET
    assert session_boundaries()[:2] == sorted(session_boundaries()[:2])


def test_an_hour_bar_on_a_half_day_ends_at_the_close() -> None:
    assert bucket_of(_ns(2023, 11, 24, 17, 45), 3600) == (_ns(2023, 11, 24, 17, 30), _ns(2023, 11, 24, 18, 0))
