"""The Strategy interface and the runner that serves one strategy to every symbol, live and in replay.

A strategy is deterministic: the same feature vector gives the same target, with a reason a trader can read.
The runner trades only warm vectors and turns a strategy that raises into one skipped bar of one symbol; it
must never let one symbol's failure stop the others, and never pass on a weight outside [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from shared.messages import FeatureVector, TargetPosition


class Strategy(Protocol):
    """Feature vector in, target position (or None: no opinion on this bar) out."""

    name: ClassVar[str]

    def decide(self, vector: FeatureVector) -> TargetPosition | None: ...


def target(strategy: str, vector: FeatureVector, weight: float, reason: str) -> TargetPosition:
    """A TargetPosition for `vector`'s symbol, stamped with the bar it was decided on."""
    return TargetPosition(
        symbol=vector.symbol,
        weight=weight,
        reason=reason,
        strategy=strategy,
        feature_end_ns=vector.end_ns,
        price=vector.close,
    )


def finite(values: dict[str, float], *names: str) -> list[float] | None:
    """The named features, or None when any of them is missing or not finite."""
    out = [values.get(name, math.nan) for name in names]
    return out if all(math.isfinite(v) for v in out) else None


ErrorHook = Callable[[FeatureVector, Exception], None]


def _ignore(vector: FeatureVector, exc: Exception) -> None:
    pass


@dataclass
class StrategyRunner:
    """Serves `strategy` to every symbol's vectors; counts what it skipped and why."""

    strategy: Strategy
    on_error: ErrorHook = _ignore
    counters: dict[str, int] = field(
        default_factory=lambda: {"vectors": 0, "cold": 0, "targets": 0, "no_opinion": 0, "errors": 0}
    )

    def on_vector(self, vector: FeatureVector) -> TargetPosition | None:
        """The target for this vector, or None (cold vector, no opinion, or the strategy failed)."""
        self.counters["vectors"] += 1
        if not vector.warm and getattr(self.strategy, "needs_warmup", True):  # `hold` reads no feature
            self.counters["cold"] += 1
            return None
        try:
            decided = self.strategy.decide(vector)
            if decided is not None and not (math.isfinite(decided.weight) and abs(decided.weight) <= 1):
                raise ValueError(f"weight {decided.weight} is outside [-1, 1]")
        except Exception as exc:  # a strategy bug costs this symbol this bar, nothing more
            self.counters["errors"] += 1
            self.on_error(vector, exc)
            return None
        if decided is None:
            self.counters["no_opinion"] += 1
            return None
        self.counters["targets"] += 1
        return decided
