"""Hold: fixed target weights per symbol from STRATEGY_PARAMS (`AAPL=0.5,MSFT=-0.2`), every other symbol flat.

For demos, operations checks and the chaos benchmark: the target is known in advance, so what the executor
does with it can be checked against the broker. It needs no feature at all, so it decides on cold vectors too
(`needs_warmup` is False). It must never accept a weight outside [-1, 1], a weight that is not a finite number,
or a symbol that is not traded (not in SYMBOLS): each is a ConfigError with one line naming STRATEGY_PARAMS.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import ClassVar

from procs.strategy.base import target
from shared.config import ConfigError
from shared.messages import FeatureVector, TargetPosition


def _bad(detail: str) -> ConfigError:
    return ConfigError(f"setting STRATEGY_PARAMS: hold {detail} (e.g. STRATEGY_PARAMS=AAPL=0.5,MSFT=-0.2)")


def parse_weights(params: Mapping[str, str], symbols: Collection[str] | None) -> dict[str, float]:
    """{'aapl': '0.5'} -> {'AAPL': 0.5}; ConfigError (one line) for a bad weight or a symbol not in `symbols`.

    `symbols` None: no symbol is refused (a caller that knows no SYMBOLS, e.g. a unit of replay code).
    """
    traded = {s.upper() for s in symbols} if symbols is not None else None
    weights: dict[str, float] = {}
    for key, raw in params.items():
        symbol = key.strip().upper()
        try:
            weight = float(raw)
        except ValueError:
            raise _bad(f"weight {symbol}={raw!r} is not a number") from None
        if not math.isfinite(weight) or not -1.0 <= weight <= 1.0:
            raise _bad(f"weight {symbol}={raw!r} must be between -1 and 1")
        if traded is not None and symbol not in traded:
            raise _bad(f"symbol {symbol} is not in SYMBOLS ({','.join(sorted(traded))})")
        weights[symbol] = weight + 0.0  # + 0.0 turns -0.0 into 0.0
    return weights


@dataclass(frozen=True)
class Hold:
    """Parameters: SYMBOL=weight pairs, each weight in [-1, 1] (a fraction of POSITION_NOTIONAL, short < 0)."""

    name: ClassVar[str] = "hold"
    needs_warmup: ClassVar[bool] = False  # it reads no feature: a cold vector's bar is as good as a warm one
    weights: tuple[tuple[str, float], ...] = ()  # (symbol, weight), sorted by symbol; a tuple keeps it frozen

    @classmethod
    def from_params(cls, params: Mapping[str, str], symbols: Collection[str] | None) -> Hold:
        """The strategy for STRATEGY_PARAMS already split into pairs (keys may be in any case)."""
        return cls(tuple(sorted(parse_weights(params, symbols).items())))

    def weight_of(self, symbol: str) -> float:
        """The held weight of `symbol`; 0 (flat) for a symbol not named."""
        return dict(self.weights).get(symbol.upper(), 0.0)

    def decide(self, vector: FeatureVector) -> TargetPosition:
        weight = self.weight_of(vector.symbol)
        if weight == 0.0:
            named = any(symbol == vector.symbol.upper() for symbol, _ in self.weights)
            why = "hold flat" + ("" if named else f" ({vector.symbol} not named in STRATEGY_PARAMS)")
        else:
            why = f"hold {weight:g} of POSITION_NOTIONAL ({'long' if weight > 0 else 'short'})"
        return target(self.name, vector, weight, why)
