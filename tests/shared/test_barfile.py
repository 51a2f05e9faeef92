"""One bar-file reader: every time format the simulator's replay or the backtest accepts, both accept, at the
same instant; a time neither can read is refused by both, naming the row."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from procs.gateway_sim.replay import ReplayFileError, load_replay_file
from procs.strategy.barfile import BarFileError, load_bar_file, write_bar_file
from shared.messages import Bar

OPEN_NS = 1_704_187_800_000_000_000  # 2024-01-02 09:30:00 UTC
MINUTE_NS = 60 * 10**9

# (first bar's time, second bar's time) in each form; the comment says which reader refused it before
FORMS = {
    "iso": ("2024-01-02 09:30:00", "2024-01-02 09:31:00"),
    "iso_offset": ("2024-01-02T10:30:00+01:00", "2024-01-02T10:31:00+01:00"),
    "iso_z_no_seconds": ("2024-01-02T09:30Z", "2024-01-02T09:31Z"),  # replay refused
    "ib_text": ("20240102 09:30:00", "20240102 09:31:00"),
    "epoch_seconds": ("1704187800", "1704187860"),
    "epoch_ms": ("1704187800000", "1704187860000"),  # replay read it as seconds (overflow)
    "epoch_ns": (str(OPEN_NS), str(OPEN_NS + MINUTE_NS)),  # replay read it as seconds (overflow)
    "decimal_seconds": ("1704187800.0", "1704187860.0"),  # backtest refused
}


def _csv(path: Path, first: str, second: str, time_column: str = "time") -> Path:
    path.write_text(
        f"symbol,{time_column},open,high,low,close,volume\n"
        f"AAPL,{first},100,101,99,100.5,1000\n"
        f"AAPL,{second},100.5,102,100,101,1200\n"
    )
    return path


def _both_starts(path: Path) -> tuple[list[int], list[int]]:
    replay = [bar.start_ns for bar in load_replay_file(path)["AAPL"]]
    backtest = [bar.start_ns for bar in load_bar_file(path)]
    return replay, backtest


@pytest.mark.parametrize("form", sorted(FORMS))
def test_both_readers_accept_every_time_form_at_the_same_instant(tmp_path: Path, form: str) -> None:
    path = _csv(tmp_path / f"{form}.csv", *FORMS[form])
    replay, backtest = _both_starts(path)
    assert replay == backtest == [OPEN_NS, OPEN_NS + MINUTE_NS]


def test_a_date_column_is_the_time_column_for_both(tmp_path: Path) -> None:
    # the replay accepted "date" for "time"; the backtest refused the file for a missing column
    path = _csv(tmp_path / "dated.csv", "2024-01-02", "2024-01-03", time_column="date")
    replay, backtest = _both_starts(path)
    assert replay == backtest == [OPEN_NS - 34_200 * 10**9, OPEN_NS - 34_200 * 10**9 + 86_400 * 10**9]


def test_the_backtests_own_history_cache_replays_in_the_simulator(tmp_path: Path) -> None:
    bars = [
        Bar(
            symbol="AAPL",
            start_ns=OPEN_NS + i * MINUTE_NS,
            bar_seconds=60,
            open=100,
            high=101,
            low=99,
            close=100.5,
            volume=10,
        )
        for i in range(3)
    ]
    for suffix in ("csv", "parquet"):
        path = tmp_path / f"cache.{suffix}"
        write_bar_file(path, bars)  # epoch ns, which the replay read as seconds before
        replay, backtest = _both_starts(path)
        assert replay == backtest == [b.start_ns for b in bars]


def test_parquet_datetimes_read_the_same(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    pl.DataFrame(
        {
            "symbol": ["AAPL", "AAPL"],
            "time": pl.Series([OPEN_NS, OPEN_NS + MINUTE_NS]).cast(pl.Datetime("ns")),
            "open": [100.0, 100.5],
            "high": [101.0, 102.0],
            "low": [99.0, 100.0],
            "close": [100.5, 101.0],
            "volume": [1000.0, 1200.0],
        }
    ).write_parquet(path)
    replay, backtest = _both_starts(path)
    assert replay == backtest == [OPEN_NS, OPEN_NS + MINUTE_NS]


def test_a_time_neither_reads_is_refused_by_both_naming_the_row(tmp_path: Path) -> None:
    path = _csv(tmp_path / "bad.csv", "2024-01-02 09:30:00", "half past nine")
    with pytest.raises(ReplayFileError, match="row 2: time 'half past nine'"):
        load_replay_file(path)
    with pytest.raises(BarFileError, match="row 2 .*time 'half past nine'"):
        load_bar_file(path)
