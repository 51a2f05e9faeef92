"""What each strategy decides on a feature vector, and how the runner guards the stream from a bad strategy."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest

from procs.features.featureset import FEATURES
from procs.strategy.base import StrategyRunner, target
from procs.strategy.meanrev import MeanReversion
from procs.strategy.trend import TrendFollower
from shared.messages import FeatureVector, TargetPosition


def _vector(symbol: str = "AAPL", warm: bool = True, **values: float) -> FeatureVector:
    full = dict.fromkeys(FEATURES, 0.0) | values
    return FeatureVector(symbol=symbol, end_ns=123, bar_seconds=60, close=100.0, warm=warm, values=full)


@pytest.mark.parametrize(
    ("fast", "slow", "hist", "weight", "word"),
    [
        (101.0, 100.0, 0.05, 1.0, "long"),
        (99.0, 100.0, -0.05, -1.0, "short"),
        (101.0, 100.0, -0.05, 0.0, "flat"),  # trend up but MACD disagrees
        (99.0, 100.0, 0.05, 0.0, "flat"),
    ],
)
def test_trend_follows_the_ema_cross_when_macd_agrees(
    fast: float, slow: float, hist: float, weight: float, word: str
) -> None:
    got = TrendFollower().decide(_vector(ema_fast=fast, ema_slow=slow, macd_hist=hist))
    assert got is not None and got.weight == weight and word in got.reason
    assert got.feature_end_ns == 123 and got.price == 100.0 and got.strategy == "trend"


def test_trend_band_and_no_shorts() -> None:
    inside = TrendFollower(band_bps=20).decide(_vector(ema_fast=100.1, ema_slow=100.0, macd_hist=1.0))
    assert inside is not None and inside.weight == 0.0  # 10 bp gap < 20 bp band
    long_only = TrendFollower(allow_short=False).decide(
        _vector(ema_fast=99.0, ema_slow=100.0, macd_hist=-1.0)
    )
    assert long_only is not None and long_only.weight == 0.0


def test_trend_has_no_opinion_without_its_features() -> None:
    assert TrendFollower().decide(_vector(ema_fast=math.nan, ema_slow=100.0, macd_hist=1.0)) is None


@pytest.mark.parametrize(
    ("z", "rsi", "weight"),
    [(-1.2, 35.0, 1.0), (1.3, 70.0, -1.0), (0.4, 55.0, 0.0), (-1.2, 65.0, 0.0)],
)
def test_meanrev_fades_a_stretched_close(z: float, rsi: float, weight: float) -> None:
    got = MeanReversion().decide(_vector(bb_z=z, rsi_14=rsi))
    assert got is not None and got.weight == weight


def test_the_same_vector_always_gives_the_same_target() -> None:
    v = _vector(ema_fast=101.0, ema_slow=100.0, macd_hist=0.1, bb_z=-2.0, rsi_14=20.0)
    for strategy in (TrendFollower(), MeanReversion()):
        assert strategy.decide(v) == strategy.decide(v)


class Flaky:
    """Raises on every BBB vector; fine for everyone else."""

    name: ClassVar[str] = "flaky"

    def decide(self, vector: FeatureVector) -> TargetPosition | None:
        if vector.symbol == "BBB":
            raise ZeroDivisionError("bug in the strategy")
        return target(self.name, vector, 0.5, "fine")


def test_a_raising_strategy_costs_that_symbol_that_bar_and_nothing_else() -> None:
    seen: list[tuple[str, str]] = []
    runner = StrategyRunner(Flaky(), on_error=lambda v, exc: seen.append((v.symbol, repr(exc))))
    out = [runner.on_vector(_vector(sym)) for sym in ("AAA", "BBB", "CCC", "BBB", "AAA")]
    assert [t.symbol if t else None for t in out] == ["AAA", None, "CCC", None, "AAA"]
    assert seen == [("BBB", "ZeroDivisionError('bug in the strategy')")] * 2
    assert runner.counters["errors"] == 2 and runner.counters["targets"] == 3


def test_cold_vectors_are_never_traded() -> None:
    runner = StrategyRunner(TrendFollower())
    assert runner.on_vector(_vector(warm=False, ema_fast=101.0, ema_slow=100.0, macd_hist=1.0)) is None
    assert runner.counters["cold"] == 1


def test_a_weight_outside_minus_one_to_one_is_an_error_not_a_target() -> None:
    class Greedy:
        name: ClassVar[str] = "greedy"

        def decide(self, vector: FeatureVector) -> TargetPosition | None:
            return target(self.name, vector, 3.0, "all in")

    errors: list[str] = []
    runner = StrategyRunner(Greedy(), on_error=lambda v, exc: errors.append(str(exc)))
    assert runner.on_vector(_vector()) is None
    assert errors == ["weight 3.0 is outside [-1, 1]"]
