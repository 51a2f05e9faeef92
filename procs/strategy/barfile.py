"""Bar files for replay: CSV or parquet with columns symbol,time,open,high,low,close,volume.

`time` (or date/datetime/timestamp) is each bar's start, read by shared/barfile.py as the simulator's replay
reads it: ISO 8601 (UTC unless it carries an offset), IB's YYYYMMDD[ HH:MM:SS], epoch seconds/ms/us/ns, or a
parquet timestamp. A file that cannot be trusted (unreadable, a missing column, a bad number or time, a bar that fails
validation, bars out of order or repeated) is refused with one line naming the file, the row and the problem;
it must never be half-loaded. Spikes are market data, not a broken file: replay rejects them as live does.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from procs.features.bars import NS
from procs.features.validate import DUPLICATE, OUT_OF_ORDER, check_values
from shared import barfile as shared_barfile
from shared.messages import Bar

COLUMNS = shared_barfile.COLUMNS
NUMBERS = ("open", "high", "low", "close", "volume")


class BarFileError(Exception):
    """str() is one line: file, row, problem."""


def _where(path: Path, i: int) -> str:
    row = f"row {i + 1}"
    return f"{path}: {row} (line {i + 2})" if path.suffix.lower() == ".csv" else f"{path}: {row}"


def read_frame(path: Path) -> pl.DataFrame:
    """The file's required columns, untyped for CSV (every cell a string) so each cell can be checked."""
    if not path.is_file():
        raise BarFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False)
        elif suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        else:
            raise BarFileError(f"{path}: not a bar file (use .csv or .parquet)")
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BarFileError(f"{path}: cannot read it: {first}") from None
    frame = shared_barfile.normalise_columns(frame)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise BarFileError(f"{path}: missing column {', '.join(missing)} (need {','.join(COLUMNS)})")
    if frame.height == 0:
        raise BarFileError(f"{path}: no bars in it")
    return frame.select(COLUMNS)


def _number(value: Any, column: str) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{column} is empty")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{column} {value!r} is not a number") from None


def _bar(row: dict[str, Any], start: int | None) -> tuple[Bar, int]:
    symbol = str(row["symbol"] or "").strip().upper()
    if not symbol:
        raise ValueError("symbol is empty")
    if row["time"] is None:
        raise ValueError("time is empty")
    if start is None:
        raise ValueError(f"time {row['time']!r} is not ISO 8601 or epoch time")
    o, h, low, c, v = (_number(row[name], name) for name in NUMBERS)
    return Bar(
        symbol=symbol, start_ns=start, bar_seconds=0, open=o, high=h, low=low, close=c, volume=v
    ), start


def _bar_seconds(starts: dict[str, list[int]], default: int) -> int:
    """The file's bar size: the most common step between one symbol's consecutive bars."""
    steps = Counter(b - a for times in starts.values() for a, b in zip(times, times[1:], strict=False))
    if not steps:
        return default
    return max(1, steps.most_common(1)[0][0] // NS)


def load_bar_file(path: Path, default_bar_seconds: int = 60) -> list[Bar]:
    """Every bar of the file in time order (then symbol); BarFileError on the first problem found.

    Each bar's bar_seconds is the file's most common step (default_bar_seconds when no symbol has two bars).
    """
    frame = read_frame(path)
    parsed: list[Bar] = []
    starts: dict[str, list[int]] = {}
    times = shared_barfile.times_ns(frame["time"]).to_list()
    for i, (row, time_ns) in enumerate(zip(frame.iter_rows(named=True), times, strict=True)):
        try:
            bar, start = _bar(row, time_ns)
        except ValueError as exc:
            raise BarFileError(f"{_where(path, i)}: {exc}") from None
        bad = check_values(bar)
        previous = starts.setdefault(bar.symbol, [])
        if bad is None and previous and start <= previous[-1]:
            reason = DUPLICATE if start == previous[-1] else OUT_OF_ORDER
            bad_text = f"{reason}: {bar.symbol} bar at {row['time']} is not after the one before it"
            raise BarFileError(f"{_where(path, i)}: {bad_text}")
        if bad is not None:
            raise BarFileError(f"{_where(path, i)}: {bad.reason}: {bad.detail}")
        previous.append(start)
        parsed.append(bar)
    size = _bar_seconds(starts, default_bar_seconds)
    bars = [msgspec.structs.replace(bar, bar_seconds=size) for bar in parsed]
    bars.sort(key=lambda b: (b.start_ns, b.symbol))
    return bars


def write_bar_file(path: Path, bars: list[Bar]) -> None:
    """Bars to CSV or parquet in the format load_bar_file reads (used for the history cache)."""
    frame = pl.DataFrame(
        {
            "symbol": [b.symbol for b in bars],
            "time": [b.start_ns for b in bars],  # epoch ns: exact, and read back as such
            **{name: [float(getattr(b, name)) for b in bars] for name in NUMBERS},
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if path.suffix.lower() == ".csv":
        frame.write_csv(tmp)
    else:
        frame.write_parquet(tmp)
    tmp.replace(path)
