"""Mean reversion: long when the close is stretched below its Bollinger mean and RSI is weak, short mirrored.

Stateless and deterministic: each target depends on one feature vector only (bb_z, rsi_14), so live and
replay agree bar for bar. Flat as soon as the close is back inside the entry band.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from procs.strategy.base import finite, target
from shared.messages import FeatureVector, TargetPosition


@dataclass(frozen=True)
class MeanReversion:
    """Parameters: entry_z (> 0, in band widths: 1 = at the 2-sigma band), rsi_long_max, rsi_short_min,
    weight (0-1], allow_short."""

    name: ClassVar[str] = "meanrev"
    entry_z: float = 1.0
    rsi_long_max: float = 50.0
    rsi_short_min: float = 50.0
    weight: float = 1.0
    allow_short: bool = True

    def __post_init__(self) -> None:
        if self.entry_z <= 0:
            raise ValueError(f"entry_z must be > 0 (got {self.entry_z:g})")
        if not (0 <= self.rsi_long_max <= 100 and 0 <= self.rsi_short_min <= 100):
            raise ValueError("rsi_long_max and rsi_short_min must be between 0 and 100")
        if not 0 < self.weight <= 1:
            raise ValueError(f"weight must be in (0, 1] (got {self.weight:g})")

    def decide(self, vector: FeatureVector) -> TargetPosition | None:
        got = finite(vector.values, "bb_z", "rsi_14")
        if got is None:
            return None
        z, rsi = got
        why = f"Bollinger z {z:+.2f} (entry {self.entry_z:g}), RSI {rsi:.1f}"
        if z <= -self.entry_z and rsi <= self.rsi_long_max:
            return target(self.name, vector, self.weight, f"{why}: stretched low, long")
        if z >= self.entry_z and rsi >= self.rsi_short_min and self.allow_short:
            return target(self.name, vector, -self.weight, f"{why}: stretched high, short")
        return target(self.name, vector, 0.0, f"{why}: inside the band, flat")
