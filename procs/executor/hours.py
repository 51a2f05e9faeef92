"""Market hours and the market's clock: is New York open now, by the XNYS exchange calendar, and what "now" is.

Sessions (holidays and early closes) come from shared/calendar.py (exchange_calendars), never from a hand-written list. With the
simulator, "now" is the simulator's clock (it runs at SIM_SPEED), anchored on the Gateway time the bridge reports,
so a demo trades whatever the real day is. Nothing here sends or refuses an order: risk.py does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from shared import calendar

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
NEW_YORK = ZoneInfo("America/New_York")
PRE_MARKET_NS = 5 * HOUR_NS + HOUR_NS // 2  # extended hours open at 04:00, 5.5 h before the 09:30 open
AFTER_HOURS_NS = 4 * HOUR_NS  # and end 4 h after the close (20:00, or 17:00 on an early-close day)

MAX_STALE_NS = 15 * 60 * 10**9  # a Gateway time this far behind our estimate means the clock was reset

Session = Literal["regular", "pre", "post", "closed"]
HoursMode = Literal["regular", "extended", "always"]


def _schedule() -> dict[int, tuple[int, int]]:
    """UTC day index -> (open_ns, close_ns) of the XNYS regular session held that day (shared/calendar.py)."""
    return calendar.sessions_by_day()


def warm_up() -> None:
    """Load the calendar now, so the first order does not pay for it."""
    calendar.warm_up()


def session_at(now_ns: int) -> Session:
    """Which part of the trading day `now_ns` (UTC ns) falls in."""
    schedule = _schedule()
    today = now_ns // DAY_NS
    hours = schedule.get(today)
    if hours is not None:
        open_ns, close_ns = hours
        if open_ns <= now_ns < close_ns:
            return "regular"
        if open_ns - PRE_MARKET_NS <= now_ns < open_ns:
            return "pre"
        if close_ns <= now_ns < close_ns + AFTER_HOURS_NS:
            return "post"
    # in winter the after-hours session runs past midnight UTC (21:00 close + 4 h)
    yesterday = schedule.get(today - 1)
    if yesterday is not None and yesterday[1] <= now_ns < yesterday[1] + AFTER_HOURS_NS:
        return "post"
    return "closed"


def may_trade(session: Session, mode: HoursMode) -> bool:
    """MARKET_HOURS: regular = regular session only; extended = 04:00-20:00 New York on session days; always."""
    if mode == "always":
        return True
    if mode == "extended":
        return session != "closed"
    return session == "regular"


def trading_day(now_ns: int) -> str:
    """The New York calendar date of `now_ns` (the day daily P&L belongs to), as YYYY-MM-DD."""
    return datetime.fromtimestamp(now_ns / 1e9, tz=UTC).astimezone(NEW_YORK).date().isoformat()


class MarketClock:
    """The market's "now": the wall clock for a real Gateway, the simulator's sped-up clock for GATEWAY=sim.

    The simulator's time is learned from the bridge (GatewayStatus.gateway_time_ns and its health report) and
    carried forward at `speed` simulated seconds per real second between reports.
    """

    def __init__(self, speed: float | None = None) -> None:
        self.speed = speed  # None: the wall clock is the market clock
        self._anchor_market_ns = 0
        self._anchor_real_ns = 0

    @property
    def simulated(self) -> bool:
        return self.speed is not None

    def anchor(self, market_ns: int, real_ns: int | None = None) -> None:
        """The Gateway said its time is `market_ns` at wall time `real_ns` (default: now).

        The bridge reports the time of its last heartbeat, seconds old: a report behind our estimate is stale
        and ignored, unless it is so far behind that the simulator's clock itself was reset."""
        if market_ns <= 0:
            return
        real = time.time_ns() if real_ns is None else real_ns
        estimate = self.now_ns(real)
        if estimate is None or market_ns > estimate or estimate - market_ns > MAX_STALE_NS:
            self._anchor_market_ns = market_ns
            self._anchor_real_ns = real

    def now_ns(self, real_ns: int | None = None) -> int | None:
        """The market's time now, or None while the simulator's time is still unknown."""
        real = time.time_ns() if real_ns is None else real_ns
        if self.speed is None:
            return real
        if self._anchor_market_ns == 0:
            return None
        return self._anchor_market_ns + int((real - self._anchor_real_ns) * self.speed)
