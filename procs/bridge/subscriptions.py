"""The registry of market-data subscriptions the bridge owes its subscribers: what to ask the Gateway for, and
which asks are live in the current session. Re-issued after every reconnect, after 1101, and when data stopped.

Pure bookkeeping keyed by a plain spec; the session adapter does the asking. It must never forget a spec
because a request failed: a spec leaves only when removed on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SubscriptionKind = Literal["bars", "quotes"]


@dataclass(frozen=True)
class SubscriptionSpec:
    """One stream from the Gateway: 5-second TRADES bars (reqRealTimeBars) or quotes (reqMktData)."""

    kind: SubscriptionKind
    symbol: str
    bar_seconds: int = 5
    what_to_show: str = "TRADES"

    def __str__(self) -> str:
        return f"{self.kind}:{self.symbol}"


@dataclass
class Subscription:
    spec: SubscriptionSpec
    generation: int = 0  # session generation it was last issued in; 0 = not live
    issued_at: float | None = None
    last_data: float | None = None
    times_issued: int = 0
    handle: object = None  # the ib adapter's handle of the live subscription (opaque here)


class SubscriptionRegistry:
    """Specs in registration order, each with its liveness in the current session generation."""

    def __init__(self) -> None:
        self._subs: dict[SubscriptionSpec, Subscription] = {}
        self.reissues = 0  # issues beyond the first of each spec

    def add(self, spec: SubscriptionSpec) -> bool:
        """Register a spec; False when it was already there."""
        if spec in self._subs:
            return False
        self._subs[spec] = Subscription(spec)
        return True

    def remove(self, spec: SubscriptionSpec) -> Subscription | None:
        return self._subs.pop(spec, None)

    def __len__(self) -> int:
        return len(self._subs)

    def specs(self) -> list[SubscriptionSpec]:
        return list(self._subs)

    def get(self, spec: SubscriptionSpec) -> Subscription:
        return self._subs[spec]

    def to_issue(self, generation: int) -> list[SubscriptionSpec]:
        """Specs not yet live in session `generation` (all of them right after a reconnect)."""
        return [s.spec for s in self._subs.values() if s.generation != generation]

    def issued(self, spec: SubscriptionSpec, generation: int, now: float, handle: object = None) -> None:
        sub = self._subs[spec]
        if sub.times_issued:
            self.reissues += 1
        sub.generation, sub.issued_at, sub.handle = generation, now, handle
        sub.times_issued += 1

    def invalidate(self, specs: list[SubscriptionSpec] | None = None) -> list[Subscription]:
        """Mark `specs` (default: all) as not live, so the next issue round re-requests them; returns them."""
        chosen = self._subs.values() if specs is None else [self._subs[s] for s in specs if s in self._subs]
        out = []
        for sub in chosen:
            sub.generation = 0
            out.append(sub)
        return out

    def data_seen(self, spec: SubscriptionSpec, now: float) -> None:
        sub = self._subs.get(spec)
        if sub is not None:
            sub.last_data = now

    def stale_since(self, since: float) -> list[SubscriptionSpec]:
        """Live specs with no data since `since`: their stream stopped (a farm broke then)."""
        return [
            s.spec
            for s in self._subs.values()
            if s.generation and (s.last_data is None or s.last_data < since)
        ]

    def live_count(self, generation: int) -> int:
        return sum(1 for s in self._subs.values() if s.generation == generation)

    def last_data(self, kind: SubscriptionKind) -> float | None:
        """Most recent data time of any spec of `kind`."""
        times = [s.last_data for s in self._subs.values() if s.spec.kind == kind and s.last_data is not None]
        return max(times) if times else None
