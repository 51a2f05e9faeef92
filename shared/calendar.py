"""The exchange calendar, loaded once per process: every XNYS regular session (holidays, early closes) 1990-2040.

Sessions come from exchange_calendars, never from a hand-written list. It must never read a clock: callers ask
about an instant they hold. The first call pays for the import and the schedule (~0.3 s); warm_up() at start-up.
"""

from __future__ import annotations

import functools
import warnings

NS = 1_000_000_000
DAY_NS = 86_400 * NS
EXCHANGE = "XNYS"
FIRST_DAY, LAST_DAY = "1990-01-02", "2040-12-31"


@functools.cache
def _opens_closes() -> tuple[tuple[int, ...], tuple[int, ...]]:
    import exchange_calendars as xcals  # slow to import: only when a session is first asked for

    with warnings.catch_warnings():  # exchange_calendars 4.13 trips a pandas 3.1 deprecation inside itself
        warnings.simplefilter("ignore")
        sched = xcals.get_calendar(EXCHANGE, start=FIRST_DAY, end=LAST_DAY).schedule
    opens = sched["open"].dt.as_unit("ns").astype("int64").tolist()
    closes = sched["close"].dt.as_unit("ns").astype("int64").tolist()
    return tuple(int(o) for o in opens), tuple(int(c) for c in closes)


@functools.cache
def sessions_by_day() -> dict[int, tuple[int, int]]:
    """UTC day index (days since 1970-01-01) -> (open_ns, close_ns) of the regular session held that day."""
    opens, closes = _opens_closes()
    return {o // DAY_NS: (o, c) for o, c in zip(opens, closes, strict=True)}


@functools.cache
def session_boundaries() -> list[int]:
    """Every regular-session open and close, as sorted UTC nanoseconds."""
    opens, closes = _opens_closes()
    return sorted(opens + closes)


def warm_up() -> None:
    """Load the calendar now, so the first bar or order does not pay for it."""
    sessions_by_day()
