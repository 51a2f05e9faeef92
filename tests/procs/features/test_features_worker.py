"""The worker's warm-up splices history and live bars without a hole, an overlap or an unfinished bar."""

from __future__ import annotations

import msgspec

from procs.features.bars import aggregate
from procs.features.batch import bars_frame, compute_features
from procs.features.synthetic import SESSION_OPEN_2024_03_04, random_walk_bars
from procs.features.worker import FeatureWorker

NS = 10**9
MINUTE = 60 * NS


def _worker() -> FeatureWorker:
    return FeatureWorker(["AAPL"], bar_seconds=60, spike_sigmas=8.0, warmup_bars=300)


def test_history_bars_that_may_still_be_forming_are_left_out() -> None:
    history = random_walk_bars("AAPL", 100)
    now = history[97].start_ns + 30 * NS  # half-way through bar 97
    result = _worker().warm_up("AAPL", history, now)
    assert (result.used_bars, result.dropped_unfinished) == (97, 3)


def test_without_a_clock_the_newest_history_bar_is_left_out() -> None:
    result = _worker().warm_up("AAPL", random_walk_bars("AAPL", 100), None)
    assert result.used_bars == 99 and result.warm


def test_live_bars_seen_during_the_warm_up_are_spliced_after_history_and_covered_bars_are_not_repeated() -> (
    None
):
    worker = _worker()
    minute = random_walk_bars("AAPL", 120, seed=4)
    live_parts = random_walk_bars(
        "AAPL",
        10 * 12,
        bar_seconds=5,
        start_ns=minute[100].start_ns,
        seed=5,
        price=minute[99].close,
        vol=2e-4,
    )
    early = [v for p in live_parts[:60] for v in worker.on_bar(p)]  # 5 minutes while the request is in flight
    assert len(early) == 5 and not early[-1].warm  # cold: no history yet
    result = worker.warm_up("AAPL", minute[:100] + [minute[100]], now_ns=minute[100].start_ns + 5 * MINUTE)
    # history's bar 100 overlaps live minute 100: history wins (a live first minute may have started mid-way)
    assert result.used_bars == 105
    later = [v for p in live_parts[60:] for v in worker.on_bar(p)]
    assert len(later) == 5 and all(v.warm for v in later)
    whole = compute_features(bars_frame(minute[:101] + aggregate(live_parts, 60)[1:])).to_dicts()
    for vector, row in zip(later, whole[-5:], strict=True):
        assert vector.end_ns == row["start_ns"] + MINUTE
        assert abs(vector.values["ema_slow"] - row["ema_slow"]) < 1e-9
        assert abs(vector.values["macd_signal"] - row["macd_signal"]) < 1e-9


def test_bad_history_bars_are_counted_and_skipped() -> None:
    worker = _worker()
    history = random_walk_bars("AAPL", 60)
    history[10] = msgspec.structs.replace(history[10], close=-1.0)
    history[20] = history[19]
    result = worker.warm_up("AAPL", history, now_ns=history[-1].start_ns + MINUTE)
    assert result.rejected == 2 and result.used_bars == 58
    assert worker.rejects()["negative"] == 1 and worker.rejects()["duplicate"] == 1


def test_a_live_bar_the_warm_up_already_holds_gives_no_vector() -> None:
    worker = _worker()
    history = random_walk_bars("AAPL", 60, bar_seconds=60)
    worker.warm_up("AAPL", history, now_ns=history[-1].start_ns + MINUTE)
    parts = random_walk_bars(
        "AAPL", 12, bar_seconds=5, start_ns=history[-1].start_ns, seed=9, price=history[-1].open
    )
    assert [v for p in parts for v in worker.on_bar(p)] == []
    assert worker.counters["covered_by_history"] == 1


def test_bars_of_other_symbols_are_ignored() -> None:
    worker = _worker()
    assert (
        worker.on_bar(random_walk_bars("ZZZ", 1, bar_seconds=60, start_ns=SESSION_OPEN_2024_03_04)[0]) == []
    )
    assert worker.counters["ignored"] == 1
