"""The batch (polars) and incremental (per bar) engines compute the same features, and hand over cleanly."""

from __future__ import annotations

import math

import msgspec
import pytest

from procs.features.batch import bars_frame, compute_features
from procs.features.featureset import FEATURES, WARM_BARS
from procs.features.incremental import FeatureState
from procs.features.synthetic import random_walk_bars
from shared.messages import Bar

TOLERANCE = 1e-9


def _with_hard_cases(bars: list[Bar]) -> list[Bar]:
    """A flat stretch (zero std, an overnight tape) and a stretch with no volume: the 0/0 traps."""
    out = list(bars)
    flat = out[2000].close
    for i in range(2001, 2100):
        out[i] = msgspec.structs.replace(out[i], open=flat, high=flat, low=flat, close=flat)
    out[2100] = msgspec.structs.replace(out[2100], open=flat)
    for i in range(3000, 3060):
        out[i] = msgspec.structs.replace(out[i], volume=0.0)
    return out


def _assert_close(batch_value: float | None, live_value: float, where: str) -> None:
    if batch_value is None:
        assert math.isnan(live_value), f"{where}: batch undefined, incremental {live_value}"
        return
    assert not math.isnan(live_value), f"{where}: incremental undefined, batch {batch_value}"
    assert abs(batch_value - live_value) <= TOLERANCE, (
        f"{where}: batch {batch_value} != incremental {live_value}"
    )


def test_batch_and_incremental_agree_within_1e9_on_10000_bars() -> None:
    bars = _with_hard_cases(random_walk_bars("AAPL", 10_000, seed=7))
    batch = compute_features(bars_frame(bars)).to_dicts()
    state = FeatureState()
    defined = dict.fromkeys(FEATURES, 0)
    for i, (bar, row) in enumerate(zip(bars, batch, strict=True)):
        live = state.update(bar)
        assert row["warm"] == state.warm == (i + 1 >= WARM_BARS)
        for name in FEATURES:
            _assert_close(row[name], live[name], f"bar {i} {name}")
            defined[name] += row[name] is not None
    assert all(count > 9_900 for count in defined.values()), defined  # every feature really compared


def test_incremental_seeded_from_batch_continues_exactly_like_one_long_batch() -> None:
    bars = random_walk_bars("MSFT", 1_200, seed=3)
    whole = compute_features(bars_frame(bars)).to_dicts()
    head = compute_features(bars_frame(bars[:700]))
    state = FeatureState.from_batch(head.tail(64).to_dicts(), count=head.height)
    for i in range(700, 1_200):
        live = state.update(bars[i])
        for name in FEATURES:
            _assert_close(whole[i][name], live[name], f"bar {i} {name}")


def test_batch_keeps_symbols_apart() -> None:
    a = random_walk_bars("AAA", 300, seed=1)
    b = random_walk_bars("BBB", 300, seed=2, price=50.0)
    mixed = sorted(a + b, key=lambda bar: (bar.start_ns, bar.symbol))
    both = compute_features(bars_frame(mixed))
    alone = compute_features(bars_frame(b))
    for name in FEATURES:
        got = both.filter(both["symbol"] == "BBB")[name].to_list()
        assert got == pytest.approx(alone[name].to_list(), abs=1e-12, nan_ok=True), name
