"""Which notices are sent off the box: the level, the dedup by kind and subject, the rate limit. Pure.

At most LIMIT alerts in any WINDOW seconds (LEAN's 30 an hour). The first alert over the limit is not sent;
one summary is, saying that alerts are held back and until when. The alert that next gets through says how
many were held back meanwhile. Held-back alerts are still written to alerts.jsonl (`bin/trader alerts`).
A recovery is sent only when the alert it ends was sent, whatever ALERT_LEVEL says. The caller's clock is
monotonic; nothing here does I/O or keeps anything unbounded.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from procs.monitor.notices import SEVERITY_RANK, Notice

LIMIT = 30
WINDOW = 3600.0
DEDUP_SECONDS = 600.0  # an event (not a state) said again within this is a duplicate

Outcome = Literal["due", "duplicate", "below_level", "rate_limited", "quiet", "summary"]


@dataclass(frozen=True, slots=True)
class Verdict:
    notice: Notice
    outcome: Outcome

    @property
    def send(self) -> bool:
        return self.outcome in ("due", "summary")


@dataclass(slots=True)
class Seen:
    """The last notice of one (kind, subject): its state, when, and whether it went off the box."""

    state: str
    at: float
    sent: bool
    held: bool = False  # held back by the rate limit: said as soon as there is room, if it still stands


@dataclass
class AlertPolicy:
    level: str = "WARNING"
    limit: int = LIMIT
    window: float = WINDOW
    dedup_seconds: float = DEDUP_SECONDS
    clock: Callable[[], float] = field(default=lambda: 0.0)
    last: dict[tuple[str, str], Seen] = field(default_factory=dict)
    sent_at: deque[float] = field(default_factory=deque)
    held: Counter[str] = field(default_factory=Counter)  # kinds held back in the current episode
    counts: Counter[str] = field(default_factory=Counter)  # outcomes, for the metrics

    def remember(self, kind: str, subject: str, state: str, sent: bool) -> None:
        """What a previous run decided (from alerts.jsonl): a restart neither repeats nor forgets an episode."""
        self.last[(kind, subject)] = Seen(state, self.clock(), sent)

    def decide(self, notice: Notice) -> list[Verdict]:
        """The verdict on one notice, preceded by a summary when it is the first one over the limit."""
        now = self.clock()
        prev = self.last.get(notice.key)
        again = prev is not None and prev.state == notice.state
        if again and prev is not None and prev.held and notice.sticky:
            if self._full(now):
                return [self._count(Verdict(notice, "duplicate"))]  # still held; counted once already
        elif again and prev is not None and (notice.sticky or now - prev.at < self.dedup_seconds):
            return [self._count(Verdict(notice, "duplicate"))]
        if notice.recovery and (prev is None or not prev.sent):
            self.last[notice.key] = Seen(notice.state, now, False)
            return [self._count(Verdict(notice, "quiet"))]  # nothing was said, so nothing to take back
        if not notice.recovery and SEVERITY_RANK[notice.severity] < SEVERITY_RANK.get(self.level, 1):
            self.last[notice.key] = Seen(notice.state, now, False)
            return [self._count(Verdict(notice, "below_level"))]
        if self._full(now):
            out = [] if self.held else [self._count(Verdict(self._summary(now), "summary"))]
            self.held[notice.kind] += 1
            # not sent: its recovery stays quiet, and a state that still stands is said once there is room
            self.last[notice.key] = Seen(notice.state, now, False, held=True)
            return [*out, self._count(Verdict(notice, "rate_limited"))]
        self.sent_at.append(now)
        self.last[notice.key] = Seen(notice.state, now, True)
        if self.held:
            notice = replace(notice, body=f"{notice.text()}\n({self._held_line()})", remedy="")
            self.held.clear()
        return [self._count(Verdict(notice, "due"))]

    def _full(self, now: float) -> bool:
        while self.sent_at and now - self.sent_at[0] >= self.window:
            self.sent_at.popleft()
        return len(self.sent_at) >= self.limit

    def _summary(self, now: float) -> Notice:
        free_in = self.window - (now - self.sent_at[0])
        return Notice(
            "rate_limit",
            "alerts",
            "HOLDING",
            "WARNING",
            f"Alert rate limit reached: {self.limit} in {self.window / 60:.0f} min",
            f"{self.limit} alerts were sent in the last {self.window / 60:.0f} minutes; further alerts are held "
            f"back (not sent) for up to {free_in / 60:.0f} min. They are all in var/log/alerts.jsonl.",
            "`bin/trader alerts` lists them; `bin/gateway-health` shows the stack now",
            sticky=False,
        )

    def _held_line(self) -> str:
        total = sum(self.held.values())
        kinds = ", ".join(f"{k} x{n}" for k, n in self.held.most_common(5))
        return (
            f"{total} alert(s) were held back by the rate limit before this one: {kinds}; `bin/trader alerts`"
        )

    def _count(self, verdict: Verdict) -> Verdict:
        self.counts[verdict.outcome] += 1
        return verdict


def decide_all(policy: AlertPolicy, notices: Iterable[Notice]) -> list[Verdict]:
    return [v for n in notices for v in policy.decide(n)]
