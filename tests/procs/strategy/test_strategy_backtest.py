"""bin/backtest: the fill model by hand, the summary and PNG on a real run, one line for a bad bar file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from procs.features.synthetic import random_walk_bars
from procs.strategy.barfile import BarFileError, load_bar_file, write_bar_file
from procs.strategy.fills import FillModel, simulate
from shared.messages import Bar, TargetPosition

REPO = Path(__file__).resolve().parents[3]
BACKTEST = REPO / "bin" / "backtest"
NS = 10**9
HEADER = "symbol,time,open,high,low,close,volume\n"


def _bar(i: int, o: float, c: float) -> Bar:
    return Bar(
        symbol="AAA",
        start_ns=i * 60 * NS,
        bar_seconds=60,
        open=o,
        high=max(o, c),
        low=min(o, c),
        close=c,
        volume=1,
    )


def test_fill_model_by_hand_next_open_slippage_commission_and_marks() -> None:
    bars = [_bar(0, 100, 100), _bar(1, 101, 102), _bar(2, 104, 103), _bar(3, 103, 99)]
    buy = TargetPosition(
        symbol="AAA", weight=0.5, reason="r", strategy="s", feature_end_ns=60 * NS, price=100.0
    )
    flat = TargetPosition(
        symbol="AAA", weight=0.0, reason="r", strategy="s", feature_end_ns=2 * 60 * NS, price=102.0
    )
    model = FillModel(notional=10_000, slippage_bps=10, commission_per_share=0.01, min_commission=1.0)
    result = simulate(bars, [buy, flat], model)
    # 0.5 * 10,000 / 100 = 50 shares at bar 1's open 101 + 10 bp = 101.101, commission max(1, 0.5) = 1
    # then 50 sold at bar 2's open 104 - 10 bp = 103.896, commission 1
    assert [(t.quantity, round(t.price, 6), t.commission) for t in result.trades] == [
        (50, 101.101, 1.0),
        (-50, 103.896, 1.0),
    ]
    pnl = 50 * (103.896 - 101.101) - 2
    assert result.pnl == pytest.approx(pnl)
    equity = [e for _, e in result.curve]
    assert equity[1] == pytest.approx(10_000 - 50 * 101.101 - 1 + 50 * 102)  # marked at bar 1's close
    assert equity[-1] == pytest.approx(10_000 + pnl)


def test_drawdown_and_sharpe_by_hand() -> None:
    from procs.strategy.fills import BacktestResult

    result = BacktestResult(initial_equity=100.0, curve=[(1, 110.0), (2, 99.0), (3, 120.0), (4, 108.0)])
    assert result.max_drawdown() == pytest.approx((12.0, 0.1))  # 120 -> 108 beats 110 -> 99 (11)
    flat = BacktestResult(initial_equity=100.0, curve=[(1, 100.0), (2, 100.0)])
    assert flat.sharpe(60) == 0.0


def test_a_target_on_the_last_bar_is_never_filled() -> None:
    bars = [_bar(0, 100, 100), _bar(1, 100, 100)]
    late = TargetPosition(
        symbol="AAA", weight=1.0, reason="r", strategy="s", feature_end_ns=2 * 60 * NS, price=100.0
    )
    assert simulate(bars, [late], FillModel()).trades == []


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATEGY", "VAR_DIR", "BAR_SECONDS"))}
    return subprocess.run(
        [sys.executable, str(BACKTEST), *args], cwd=home, env={**env, "STACK_HOME": str(home)},
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def test_backtest_on_a_small_file_prints_the_summary_and_writes_the_png(short_tmp: Path) -> None:
    bars = random_walk_bars("AAA", 400, seed=1, vol=2e-3) + random_walk_bars(
        "BBB", 400, seed=2, price=40.0, vol=2e-3
    )
    bar_file = short_tmp / "bars.parquet"
    write_bar_file(bar_file, bars)
    png = short_tmp / "equity.png"
    run = _run(str(bar_file), "--png", str(png), "--trades", "3", home=short_tmp)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for heading in (
        "trades ",
        "P&L ",
        "max drawdown ",
        "Sharpe ratio ",
        "bars            800 x 60s, 2 symbols",
    ):
        assert heading in out, out
    assert "BUY" in out or "SELL" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (
            "AAA,2024-03-04T14:30:00Z,10,11,9,10,100\nAAA,2024-03-04T14:31:00Z,10,9,11,10,100\n",
            "row 2 (line 3): ohlc_inconsistent",
        ),
        (
            "AAA,2024-03-04T14:30:00Z,10,11,9,10,100\nAAA,2024-03-04T14:30:00Z,10,11,9,10,100\n",
            "row 2 (line 3): duplicate",
        ),
        (
            "AAA,2024-03-04T14:31:00Z,10,11,9,10,100\nAAA,2024-03-04T14:30:00Z,10,11,9,10,100\n",
            "row 2 (line 3): out_of_order",
        ),
        ("AAA,2024-03-04T14:30:00Z,10,11,9,ten,100\n", "row 1 (line 2): close 'ten' is not a number"),
        ("AAA,yesterday,10,11,9,10,100\n", "row 1 (line 2): time 'yesterday' is not ISO 8601"),
        ("AAA,2024-03-04T14:30:00Z,10,11,9,10,nan\n", "row 1 (line 2): non_finite"),
        ("AAA,2024-03-04T14:30:00Z,10,11,9,-10,100\n", "row 1 (line 2): negative"),
    ],
)
def test_a_bad_bar_is_refused_naming_file_row_and_problem(short_tmp: Path, rows: str, problem: str) -> None:
    path = short_tmp / "bad.csv"
    path.write_text(HEADER + rows)
    with pytest.raises(BarFileError, match="^" + str(path).replace(".", r"\.") + ": ") as err:
        load_bar_file(path)
    assert problem in str(err.value)


def test_a_missing_column_is_named(short_tmp: Path) -> None:
    path = short_tmp / "bad.csv"
    path.write_text("symbol,time,open,high,low,close\nAAA,2024-03-04T14:30:00Z,10,11,9,10\n")
    with pytest.raises(BarFileError, match="missing column volume"):
        load_bar_file(path)


def test_backtest_refuses_a_bad_file_with_one_line_and_a_nonzero_exit(short_tmp: Path) -> None:
    path = short_tmp / "bars.csv"
    path.write_text(
        HEADER + "AAA,2024-03-04T14:30:00Z,10,11,9,10,100\nAAA,2024-03-04T14:31:00Z,10,12,9,13,100\n"
    )
    run = _run(str(path), home=short_tmp)
    assert run.returncode == 65
    assert run.stderr.strip().splitlines() == [
        f"backtest: {path}: row 2 (line 3): ohlc_inconsistent: high 12 / low 9 do not bracket open 10 and close 13"
    ]
    assert run.stdout == ""
