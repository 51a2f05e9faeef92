"""IB's pacing rules as pure arithmetic: one token bucket for every message sent to the Gateway, and the
historical-data pacer (60 requests / 10 min, no identical request within 15 s, at most 5 per contract in 2 s).

Plain numbers in, plain numbers out; the caller supplies the clock. Nothing here may send, sleep or log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

IB_MAX_MSGS_PER_SECOND = 50  # all message types combined; above it the Gateway sends 100 and drops the socket
HIST_MAX_REQUESTS = 60
HIST_WINDOW_SECONDS = 600.0
HIST_IDENTICAL_GAP_SECONDS = 15.0
HIST_SAME_CONTRACT_MAX = 5  # "no 6+ requests for the same contract within 2 s"
HIST_SAME_CONTRACT_WINDOW = 2.0


def gateway_bucket(msgs_per_second: float) -> TokenBucket:
    """The bridge's one bucket: `msgs_per_second` sustained, and a burst small enough that no 1-second window
    ever holds more than IB's 50 (burst + rate <= 49, one message of margin for the handshake)."""
    rate = min(float(msgs_per_second), IB_MAX_MSGS_PER_SECOND - 2.0)
    burst = max(1.0, float(int(IB_MAX_MSGS_PER_SECOND - 1 - rate)))
    return TokenBucket(rate=rate, capacity=burst)


@dataclass
class TokenBucket:
    """`rate` tokens per second, holding at most `capacity`; starts full."""

    rate: float
    capacity: float
    tokens: float = -1.0
    last: float | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        if self.tokens < 0:
            self.tokens = self.capacity

    def _refill(self, now: float) -> None:
        if self.last is not None and now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        if self.last is None or now > self.last:
            self.last = now

    def try_take(self, now: float) -> bool:
        """Take one token if there is one."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 when one is there now)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


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
