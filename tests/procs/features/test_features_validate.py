"""Every validation rule refuses its bad bar with its reason and lets good bars through."""

from __future__ import annotations

import math

import msgspec
import pytest

from procs.features.intake import BarIntake
from procs.features.synthetic import random_walk_bars
from procs.features.validate import (
    DUPLICATE,
    NEGATIVE,
    NON_FINITE,
    OHLC_INCONSISTENT,
    OUT_OF_ORDER,
    SPIKE,
    SPIKE_CONFIRM,
    BarValidator,
)
from shared.messages import Bar

GOOD = random_walk_bars("AAPL", 60, bar_seconds=5, seed=5, vol=2e-4)


def _fed(validator: BarValidator, bars: list[Bar]) -> None:
    for bar in bars:
        assert validator.check(bar) is None, bar


def test_good_bars_all_pass() -> None:
    _fed(BarValidator(), GOOD)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"close": math.nan}, NON_FINITE),
        ({"high": math.inf}, NON_FINITE),
        ({"volume": math.nan}, NON_FINITE),
        ({"low": -1.0}, NEGATIVE),
        ({"open": 0.0}, NEGATIVE),
        ({"volume": -5.0}, NEGATIVE),
    ],
)
def test_a_bar_with_a_bad_value_is_refused(change: dict[str, float], reason: str) -> None:
    v = BarValidator()
    _fed(v, GOOD[:30])
    bad = msgspec.structs.replace(GOOD[30], **change)
    assert (got := v.check(bad)) is not None and got.reason == reason
    assert v.check(GOOD[30]) is None  # the refused bar left no trace: the good one still fits


@pytest.mark.parametrize("field", ["high_below_close", "low_above_open", "high_below_low"])
def test_a_bar_whose_high_and_low_do_not_bracket_it_is_refused(field: str) -> None:
    bar = GOOD[0]
    bad = {
        "high_below_close": msgspec.structs.replace(bar, high=bar.close * 0.99, low=bar.close * 0.98),
        "low_above_open": msgspec.structs.replace(bar, low=bar.open * 1.01, high=bar.open * 1.02),
        "high_below_low": msgspec.structs.replace(bar, high=bar.low * 0.99),
    }[field]
    got = BarValidator().check(bad)
    assert got is not None and got.reason == OHLC_INCONSISTENT


def test_a_repeated_bar_is_a_duplicate_and_an_older_one_is_out_of_order() -> None:
    v = BarValidator()
    _fed(v, GOOD[:10])
    dup, old = v.check(GOOD[9]), v.check(GOOD[5])
    assert dup is not None and dup.reason == DUPLICATE
    assert old is not None and old.reason == OUT_OF_ORDER
    assert v.check(GOOD[10]) is None


def test_a_spike_beyond_the_configured_sigmas_is_refused_and_a_smaller_move_is_not() -> None:
    v = BarValidator(spike_sigmas=8.0)
    _fed(v, GOOD[:40])
    last = GOOD[39].close
    spike = msgspec.structs.replace(GOOD[40], close=last * 1.05, high=last * 1.05)
    got = v.check(spike)
    assert got is not None and got.reason == SPIKE
    modest = msgspec.structs.replace(GOOD[41], close=last * 1.0002, high=max(GOOD[41].high, last * 1.0002))
    assert v.check(modest) is None


def test_a_level_that_holds_is_accepted_as_a_real_move_after_a_few_bars() -> None:
    v = BarValidator(spike_sigmas=8.0)
    _fed(v, GOOD[:40])
    level = GOOD[39].close * 1.05
    shifted = [
        msgspec.structs.replace(b, open=level, high=level * 1.0001, low=level * 0.9999, close=level)
        for b in GOOD[40:45]
    ]
    verdicts = [v.check(b) for b in shifted]
    assert [x.reason if x else None for x in verdicts[: SPIKE_CONFIRM - 1]] == [SPIKE] * (SPIKE_CONFIRM - 1)
    assert verdicts[SPIKE_CONFIRM - 1 :] == [None] * (len(shifted) - SPIKE_CONFIRM + 1)
    assert v.level_shifts == 1


def test_intake_counts_rejects_by_reason_and_a_bad_bar_closes_nothing() -> None:
    intake = BarIntake(bar_seconds=60)
    closed = []
    for i, bar in enumerate(GOOD):
        closed += intake.add(bar)
        if i == 20:
            assert intake.add(msgspec.structs.replace(bar, close=math.nan)) == []
            assert intake.add(bar) == []  # duplicate
    assert intake.rejects.by_reason[NON_FINITE] == 1
    assert intake.rejects.by_reason[DUPLICATE] == 1
    assert intake.rejects.total == 2
    assert len(closed) == 5  # 60 five-second bars = five minutes, nothing lost to the rejects
