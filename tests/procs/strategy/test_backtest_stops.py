"""bin/backtest models the live executor's protective stops on the bar file: one stop per position (STP priced as
procs/executor/stops.py prices it, TRAIL following the best price only one way), a bar's range reaching the
trigger fills it at the trigger, a bar opening beyond it fills it at the open, and a target decided before the
stop filled is not re-entered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from procs.features.synthetic import SESSION_OPEN_2024_03_04, random_walk_bars
from procs.strategy.barfile import write_bar_file
from procs.strategy.fills import FillModel, simulate
from shared.messages import Bar, TargetPosition

REPO = Path(__file__).resolve().parents[3]
BACKTEST = REPO / "bin" / "backtest"
NS = 10**9
FREE = {"slippage_bps": 0.0, "commission_per_share": 0.0, "min_commission": 0.0, "notional": 10_000.0}


def bar(i: int, o: float, h: float, low: float, c: float) -> Bar:
    return Bar(symbol="AAA", start_ns=i * 60 * NS, bar_seconds=60, open=o, high=h, low=low, close=c, volume=1)


def target(after_bar: int, weight: float, price: float = 100.0) -> TargetPosition:
    return TargetPosition(symbol="AAA", weight=weight, reason="t", strategy="s",
                          feature_end_ns=(after_bar + 1) * 60 * NS, price=price)  # fmt: skip


def trades(
    bars: list[Bar], targets: list[TargetPosition], **stops: tuple[str, float]
) -> list[tuple[int, float]]:
    result = simulate(bars, targets, FillModel(**FREE, stops=dict(stops)))
    return [(t.quantity, round(t.price, 4)) for t in result.trades]


def test_a_fixed_stop_fills_at_its_trigger_when_the_bar_reaches_it() -> None:
    # 100 shares bought at 100.00; STP 5% -> 95.00; bar 2 trades down to 94 -> sold at 95.00
    bars = [
        bar(0, 100, 100, 100, 100),
        bar(1, 100, 101, 99, 100),
        bar(2, 99, 99, 94, 96),
        bar(3, 96, 96, 96, 96),
    ]
    assert trades(bars, [target(0, 1.0)], AAA=("STP", 5.0)) == [(100, 100.0), (-100, 95.0)]


def test_no_stop_configured_holds_through_the_fall() -> None:
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 101, 99, 100), bar(2, 99, 99, 94, 96)]
    assert trades(bars, [target(0, 1.0)]) == [(100, 100.0)]


def test_a_gap_through_the_trigger_fills_at_the_open_not_the_trigger() -> None:
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 101, 99, 100), bar(2, 80, 82, 79, 81)]
    assert trades(bars, [target(0, 1.0)], **{"": ("STP", 5.0)}) == [(100, 100.0), (-100, 80.0)]


def test_a_shorts_stop_is_above_it() -> None:
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 101, 99, 100), bar(2, 101, 106, 100, 104)]
    assert trades(bars, [target(0, -1.0)], AAA=("STP", 5.0)) == [(-100, 100.0), (100, 105.0)]


def test_a_trailing_stop_follows_the_high_never_back_and_fills_where_it_trailed() -> None:
    # entry 100 -> trigger 92 (8%); high 110 -> 101.20; a dip to 103 leaves it at 101.20; low 100 fills at 101.20
    bars = [
        bar(0, 100, 100, 100, 100),
        bar(1, 100, 100, 99, 100),
        bar(2, 100, 110, 100, 109),
        bar(3, 106, 107, 103, 104),
        bar(4, 104, 104, 100, 101),
    ]
    assert trades(bars, [target(0, 1.0)], AAA=("TRAIL", 8.0)) == [(100, 100.0), (-100, 101.2)]


def test_a_resize_keeps_the_stops_trigger_and_a_stopped_out_target_is_not_re_entered() -> None:
    # 50 at 100 (STP 95.00), then 100 in all at 102: the stop keeps 95.00 (modified, not re-priced);
    # bar 3 gaps to 90: stopped out at the open; the target decided at bar 2's close is not re-entered then,
    # bar 3's own target is (at bar 4's open)
    bars = [
        bar(0, 100, 100, 100, 100),
        bar(1, 100, 100, 100, 100),
        bar(2, 102, 103, 101, 102),
        bar(3, 90, 91, 89, 90),
        bar(4, 90, 90, 90, 90),
    ]
    targets = [target(0, 0.5), target(1, 1.0, 100), target(2, 1.0, 100), target(3, 1.0, 90)]
    got = trades(bars, targets, AAA=("STP", 5.0))
    assert got == [(50, 100.0), (50, 102.0), (-100, 90.0), (111, 90.0)]


def test_bin_backtest_applies_the_settings_stops(short_tmp: Path) -> None:
    # a steady 20% fall after a warm-up: with STOP_LOSS_PERCENT=5 the hold strategy is stopped out
    rising = random_walk_bars("AAPL", 120, seed=3, vol=1e-4)
    last = rising[-1].close
    falling = []
    for i in range(60):
        o = last * (1 - 0.004 * i)
        c = o * 0.996
        start = SESSION_OPEN_2024_03_04 + (120 + i) * 60 * NS
        falling.append(
            Bar(symbol="AAPL", start_ns=start, bar_seconds=60, open=o, high=o, low=c, close=c, volume=1)
        )
    bar_file = short_tmp / "bars.parquet"
    write_bar_file(bar_file, rising + falling)

    def run(**env: str) -> str:
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("STRATEGY", "VAR_DIR", "BAR_SECONDS"))
        }
        base = {k: v for k, v in base.items() if k not in ("STOP_LOSS_PERCENT", "TRAILING_STOP_PERCENT")}
        done = subprocess.run(
            [sys.executable, str(BACKTEST), str(bar_file), "--strategy", "hold", "--params", "AAPL=1",
             "--trades", "0", "--png", str(short_tmp / "eq.png")],
            cwd=short_tmp, env={**base, "STACK_HOME": str(short_tmp), "SYMBOLS": "AAPL", **env}, capture_output=True, text=True,
            timeout=90,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "protective stop STP" in run(STOP_LOSS_PERCENT="5")
    assert "protective stop TRAIL" in run(TRAILING_STOP_PERCENT="3")
    assert "protective stop" not in run()


@pytest.mark.parametrize("kind", ["STP", "TRAIL"])
def test_a_stop_never_fills_above_a_longs_entry_on_a_straight_fall(kind: str) -> None:
    bars = [bar(i, 100 - i, 100 - i, 99 - i, 99 - i) for i in range(30)]
    got = trades(bars, [target(0, 1.0)], AAA=(kind, 5.0))
    assert len(got) == 2 and got[1][0] == -100 and got[1][1] <= 95.0
