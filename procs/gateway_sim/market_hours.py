"""When the simulated US stock market is open: XNYS regular sessions in UTC nanoseconds and in IB's hours strings.

Sessions come from shared/calendar.py (exchange_calendars, loaded once per process); this module must never carry a hand-written
holiday list. Outside the calendar's range (1990-2040) a plain weekday 09:30-16:00 New York rule stands in.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from shared import calendar

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
NEW_YORK = ZoneInfo("America/New_York")
PRE_MARKET_NS = 5 * HOUR_NS + HOUR_NS // 2  # extended hours open 04:00, 5.5 h before the 09:30 open
AFTER_HOURS_NS = 4 * HOUR_NS  # extended hours end 4 h after the close (20:00, or 17:00 on a half day)
_CAL_FIRST, _CAL_LAST = calendar.FIRST_DAY, calendar.LAST_DAY
_EPOCH = date(1970, 1, 1)


def _schedule() -> dict[int, tuple[int, int]]:
    """UTC day index -> (open_ns, close_ns) of the XNYS session held that day (shared/calendar.py)."""
    return calendar.sessions_by_day()


@functools.cache
def _calendar_days() -> tuple[int, int]:
    first = (date.fromisoformat(_CAL_FIRST) - _EPOCH).days
    last = (date.fromisoformat(_CAL_LAST) - _EPOCH).days
    return first, last


def _weekday_rule(day: int) -> tuple[int, int] | None:
    d = _EPOCH + timedelta(days=day)
    if d.weekday() >= 5:
        return None
    open_ = datetime(d.year, d.month, d.day, 9, 30, tzinfo=NEW_YORK)
    close = datetime(d.year, d.month, d.day, 16, 0, tzinfo=NEW_YORK)
    return int(open_.timestamp()) * 10**9, int(close.timestamp()) * 10**9


def session_on(day: int) -> tuple[int, int] | None:
    """(open_ns, close_ns) of the regular session on UTC day `day` (days since 1970-01-01), None if closed."""
    first, last = _calendar_days()
    if first <= day <= last:
        return _schedule().get(day)
    return _weekday_rule(day)


def sessions_between(first_day: int, last_day: int) -> np.ndarray:
    """Bool array: True for each UTC day in [first_day, last_day] that holds a regular session."""
    return np.array([session_on(d) is not None for d in range(first_day, last_day + 1)], dtype=bool)


def _as_utc_ns(now: datetime) -> int:
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1_000_000) * 1000


def default_sim_start(now: datetime) -> datetime:
    """The latest XNYS regular-session open at or before `now`, or `now` itself when inside a session.

    So a demo started on a weekend or at night still trades in a live session.
    """
    now_ns = _as_utc_ns(now)
    today = now_ns // DAY_NS
    for day in range(today, today - 30, -1):  # longest US market closure since 1990 is 4 days
        session = session_on(day)
        if session is None or session[0] > now_ns:
            continue
        open_ns, close_ns = session
        if now_ns < close_ns:
            return now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)
        return datetime.fromtimestamp(open_ns / 1e9, tz=UTC)
    raise ValueError(f"no XNYS session in the 30 days before {now.isoformat()}")


def _hhmm(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=NEW_YORK).strftime("%Y%m%d:%H%M")


@functools.lru_cache(maxsize=16)
def _hours_from(first: date, days: int) -> tuple[str, str]:
    trading: list[str] = []
    liquid: list[str] = []
    for i in range(days):
        d = first + timedelta(days=i)
        session = session_on((d - _EPOCH).days)
        if session is None:
            closed = f"{d:%Y%m%d}:CLOSED"
            trading.append(closed)
            liquid.append(closed)
            continue
        open_ns, close_ns = session
        trading.append(f"{_hhmm(open_ns - PRE_MARKET_NS)}-{_hhmm(close_ns + AFTER_HOURS_NS)}")
        liquid.append(f"{_hhmm(open_ns)}-{_hhmm(close_ns)}")
    return ";".join(trading), ";".join(liquid)


def hours_strings(now: datetime, days: int = 7) -> tuple[str, str]:
    """IB's (tradingHours, liquidHours) for `days` New York dates from `now`'s, e.g. "20261123:0930-20261123:1600"."""
    first = datetime.fromtimestamp(_as_utc_ns(now) / 1e9, tz=NEW_YORK).date()
    return _hours_from(first, days)


WALL_MINUTES_INTO_SESSION = (
    30  # wall mode outside a session: start this far into the latest one (history behind)
)


def wall_offset_ns(now: datetime) -> int:
    """Wall-clock mode's shift of the price path: 0 when `now` is inside a regular session; otherwise what maps
    `now` to 30 minutes after the latest session's open, a whole number of minutes (the 5-second grid holds),
    so the market is open for the next six hours of real time."""
    now_ns = _as_utc_ns(now)
    today = now_ns // DAY_NS
    for day in range(today, today - 30, -1):
        session = session_on(day)
        if session is None or session[0] > now_ns:
            continue
        if now_ns < session[1]:
            return 0
        target = session[0] + WALL_MINUTES_INTO_SESSION * 60 * 10**9
        return (now_ns - target) // (60 * 10**9) * (60 * 10**9)
    raise ValueError(f"no XNYS session in the 30 days before {now.isoformat()}")


def shifted_hours(price_now: datetime, shift_ns: int) -> tuple[str, str]:
    """IB's (tradingHours, liquidHours) in wall-clock mode: the session of the path at `price_now`, moved by
    `shift_ns` onto the wall clock (one range each: the session the simulator is trading)."""
    day = _as_utc_ns(price_now) // DAY_NS
    session = session_on(day)
    if session is None:
        return hours_strings(datetime.fromtimestamp((_as_utc_ns(price_now) + shift_ns) / 1e9, tz=UTC), 1)
    open_ns, close_ns = session[0] + shift_ns, session[1] + shift_ns
    trading = f"{_hhmm(open_ns - PRE_MARKET_NS)}-{_hhmm(close_ns + AFTER_HOURS_NS)}"
    return trading, f"{_hhmm(open_ns)}-{_hhmm(close_ns)}"
