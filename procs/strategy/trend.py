"""Trend follower: long while the fast EMA is above the slow one and MACD agrees, short in the mirror case.

Stateless and deterministic: each target depends on one feature vector only, so live and replay agree bar
for bar. With `confirm` on, the MACD histogram's sign flips the target to flat often enough to trade in a demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from procs.strategy.base import finite, target
from shared.messages import FeatureVector, TargetPosition


@dataclass(frozen=True)
class TrendFollower:
    """Parameters: weight (0-1], band_bps (>= 0: EMA gap needed), confirm (MACD must agree), allow_short."""

    name: ClassVar[str] = "trend"
    weight: float = 1.0
    band_bps: float = 0.0
    confirm: bool = True
    allow_short: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.weight <= 1:
            raise ValueError(f"weight must be in (0, 1] (got {self.weight:g})")
        if self.band_bps < 0:
            raise ValueError(f"band_bps must be >= 0 (got {self.band_bps:g})")

    def decide(self, vector: FeatureVector) -> TargetPosition | None:
        got = finite(vector.values, "ema_fast", "ema_slow", "macd_hist")
        if got is None:
            return None
        fast, slow, hist = got
        gap_bps = (fast / slow - 1.0) * 1e4
        side = "above" if gap_bps >= 0 else "below"
        why = f"fast EMA {fast:.2f} {side} slow EMA {slow:.2f} by {abs(gap_bps):.1f} bp, MACD histogram {hist:+.4f}"
        if gap_bps > self.band_bps and (not self.confirm or hist > 0):
            return target(self.name, vector, self.weight, f"{why}: long")
        if gap_bps < -self.band_bps and (not self.confirm or hist < 0) and self.allow_short:
            return target(self.name, vector, -self.weight, f"{why}: short")
        return target(self.name, vector, 0.0, f"{why}: no clear trend, flat")
