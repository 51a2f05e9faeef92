"""IB's pacing rules as pure arithmetic: one limiter for every message sent to the Gateway (at most N in any
sliding 1-second window), and the historical-data pacer (60 requests / 10 min, no identical request within 15 s,
at most 5 per contract in 2 s).

Plain numbers in, plain numbers out; the caller supplies the clock. Nothing here may send, sleep or log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Protocol

IB_MAX_MSGS_PER_SECOND = 50  # all message types combined; above it the Gateway sends 100 and drops the socket
# The window is held a little longer than IB's second: messages leave in bursts now, and a burst that reaches
# the Gateway late (loop or network delay) must not land in the same second as the next one.
WINDOW_SECONDS = 1.05
HIST_MAX_REQUESTS = 60
HIST_WINDOW_SECONDS = 600.0
HIST_IDENTICAL_GAP_SECONDS = 15.0
HIST_SAME_CONTRACT_MAX = 5  # "no 6+ requests for the same contract within 2 s"
HIST_SAME_CONTRACT_WINDOW = 2.0


class Limiter(Protocol):
    """What the paced outbox needs: may one message go now, and if not, how long until one may."""

    def try_take(self, now: float, keep: int = 0) -> bool: ...
    def wait_time(self, now: float, keep: int = 0) -> float: ...


def order_reserve(limit: int) -> int:
    """The slots of the window only orders, cancels and heartbeats may use: half of it (22 of 45, 20 of 40).
    Start-up, a reconnect and a 1101 send a subscription per symbol and feed, and the feature worker's history
    requests come right before the first trading bar: a burst of one order per symbol (20) decided meanwhile must
    go at once, not wait a second behind them. The rest of the traffic keeps the other half of every window."""
    return limit // 2


def gateway_limiter(msgs_per_second: float) -> SlidingWindow:
    """The bridge's one limiter: at most `msgs_per_second` (capped at 49, one below IB's 50 for the handshake)
    messages in any 1-second window. A burst of 20 orders goes at once; a sustained flood runs at that rate."""
    limit = max(1, min(int(msgs_per_second), IB_MAX_MSGS_PER_SECOND - 1))
    return SlidingWindow(limit=limit, window=WINDOW_SECONDS)


@dataclass
class SlidingWindow:
    """At most `limit` messages in any `window` seconds: a message may go when fewer than `limit` went in the
    `window` seconds before it, so message i and message i + limit are always at least `window` apart."""

    limit: int
    window: float
    _sent: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError("a sliding window needs limit >= 1 and window > 0")

    def _forget(self, now: float) -> None:
        # the same sum as wait_time's, so "wait 0" and "room now" can never disagree by a rounding
        while self._sent and self._sent[0] + self.window <= now:
            self._sent.popleft()

    def try_take(self, now: float, keep: int = 0) -> bool:
        """Count one message as sent at `now` if the window has room for it and `keep` more."""
        if self._sent and now < self._sent[-1]:
            now = self._sent[-1]  # a clock that steps back must not open room the window does not have
        self._forget(now)
        if len(self._sent) >= self.limit - keep:
            return False
        self._sent.append(now)
        return True

    def wait_time(self, now: float, keep: int = 0) -> float:
        """Seconds until one message may go, leaving room for `keep` more (0 when one may go now)."""
        self._forget(now)
        allowed = self.limit - keep
        if len(self._sent) < allowed:
            return 0.0
        if allowed <= 0:
            return self.window  # nothing may go while `keep` takes the whole window
        return max(0.0, self._sent[-allowed] + self.window - now)


@dataclass(frozen=True)
class HistoryVerdict:
    """What the pacer says about one historical request: go now, wait `wait` seconds, or reuse a result."""

    wait: float
    rule: str = ""  # which of IB's rules made it wait, in words
    identical_recent: bool = False  # the same request was sent less than 15 s ago


@dataclass
class HistoryPacer:
    """IB's historical-data limits (error 162 when broken), applied before a request is sent."""

    max_requests: int = HIST_MAX_REQUESTS
    window: float = HIST_WINDOW_SECONDS
    identical_gap: float = HIST_IDENTICAL_GAP_SECONDS
    per_contract_max: int = HIST_SAME_CONTRACT_MAX
    per_contract_window: float = HIST_SAME_CONTRACT_WINDOW
    _sent: deque[float] = field(default_factory=deque)
    _by_key: dict[Hashable, float] = field(default_factory=dict)
    _by_contract: dict[str, deque[float]] = field(default_factory=dict)

    def _forget(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()
        stale = [k for k, t in self._by_key.items() if now - t >= self.identical_gap]
        for k in stale:
            del self._by_key[k]
        for sym in list(self._by_contract):
            times = self._by_contract[sym]
            while times and now - times[0] >= self.per_contract_window:
                times.popleft()
            if not times:
                del self._by_contract[sym]

    def check(self, key: Hashable, contract: str, now: float) -> HistoryVerdict:
        """How long `key` (the full request) on `contract` must wait before it may be sent."""
        self._forget(now)
        waits: list[tuple[float, str]] = []
        last_same = self._by_key.get(key)
        if last_same is not None:
            waits.append((last_same + self.identical_gap - now, "no identical request within 15 s"))
        if len(self._sent) >= self.max_requests:
            oldest = self._sent[len(self._sent) - self.max_requests]
            waits.append((oldest + self.window - now, f"at most {self.max_requests} requests per 10 minutes"))
        times = self._by_contract.get(contract)
        if times and len(times) >= self.per_contract_max:
            oldest = times[len(times) - self.per_contract_max]
            waits.append((oldest + self.per_contract_window - now, "at most 5 requests per contract in 2 s"))
        if not waits:
            return HistoryVerdict(wait=0.0)
        wait, rule = max(waits)
        return HistoryVerdict(wait=max(0.0, wait), rule=rule, identical_recent=last_same is not None)

    def record(self, key: Hashable, contract: str, now: float) -> None:
        """Count a request as sent at `now`."""
        self._sent.append(now)
        self._by_key[key] = now
        self._by_contract.setdefault(contract, deque()).append(now)

    def used(self, now: float) -> int:
        """Requests counted in the current 10-minute window."""
        self._forget(now)
        return len(self._sent)
