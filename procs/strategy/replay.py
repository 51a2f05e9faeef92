"""Replay: the live path's code over recorded bars, bar file or cached history, for backtests and checks.

Bars go through the same BarIntake (validation, session-aligned aggregation) as live, the feature set is
computed in one polars batch, and every vector goes through the same StrategyRunner in time order. Pure:
bars in, targets out; it never reads a clock, a socket or a file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from procs.features.bars import NS
from procs.features.batch import bars_frame, compute_features
from procs.features.featureset import FEATURES
from procs.features.intake import BarIntake
from procs.strategy.base import Strategy, StrategyRunner
from shared.messages import Bar, FeatureVector, TargetPosition

Progress = Callable[[Iterable[FeatureVector], int], Iterable[FeatureVector]]


def _no_progress(vectors: Iterable[FeatureVector], total: int) -> Iterable[FeatureVector]:
    return vectors


@dataclass
class ReplayResult:
    bars: list[Bar]  # the BAR_SECONDS bars the features were computed on
    features: pl.DataFrame
    targets: list[TargetPosition]
    rejects: dict[str, int]
    counters: dict[str, int]
    errors: list[tuple[str, int, str]] = field(default_factory=list)  # symbol, bar end, exception


def vector_from_row(row: dict[str, Any]) -> FeatureVector:
    """A compute_features row as the FeatureVector the live path would publish for that bar."""
    return FeatureVector(
        symbol=row["symbol"],
        end_ns=row["start_ns"] + row["bar_seconds"] * NS,
        bar_seconds=row["bar_seconds"],
        close=row["close"],
        warm=row["warm"],
        values={name: math.nan if row[name] is None else row[name] for name in FEATURES},
    )


def vectors(features: pl.DataFrame) -> Iterator[FeatureVector]:
    """Every row's vector in time order (bar end, then symbol)."""
    ordered = features.with_columns((pl.col("start_ns") + pl.col("bar_seconds") * NS).alias("_end")).sort(
        "_end", "symbol"
    )
    for row in ordered.iter_rows(named=True):
        yield vector_from_row(row)


def replay(
    bars: Iterable[Bar],
    strategy: Strategy,
    *,
    bar_seconds: int,
    spike_sigmas: float = 8.0,
    progress: Progress = _no_progress,
) -> ReplayResult:
    """Validate, aggregate, compute features and run `strategy` over time-ordered bars of any symbols."""
    intake = BarIntake(bar_seconds, spike_sigmas)
    closed = [out for bar in bars for out in intake.add(bar)]
    features = compute_features(bars_frame(closed))
    result = ReplayResult(closed, features, [], dict(intake.rejects.by_reason), {})

    def record_error(vector: FeatureVector, exc: Exception) -> None:
        result.errors.append((vector.symbol, vector.end_ns, repr(exc)))

    runner = StrategyRunner(strategy, on_error=record_error)
    for vector in progress(vectors(features), features.height):
        decided = runner.on_vector(vector)
        if decided is not None:
            result.targets.append(decided)
    result.counters = dict(runner.counters)
    return result
