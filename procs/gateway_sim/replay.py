"""Reads a user's bar file (CSV or parquet: symbol,time,open,high,low,close,volume) for the simulator to replay.

A bad file is refused whole with one line naming the file, the row and the problem; it must never be
half-loaded or "repaired". Rows are numbered from 1, not counting the CSV header. Times are read by
shared/barfile.py, as the backtest reads them.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from procs.gateway_sim.pricepath import SimBar
from shared import barfile

REQUIRED = barfile.COLUMNS
_PRICES = ("open", "high", "low", "close")


class ReplayFileError(Exception):
    """str(e) is one line: "<file>: row N: <problem>" or "<file>: <problem>"."""


def _read(path: Path) -> pl.DataFrame:
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as e:
        problem = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ReplayFileError(f"{path}: cannot read: {problem}") from None


def _normalise_columns(path: Path, df: pl.DataFrame) -> pl.DataFrame:
    df = barfile.normalise_columns(df)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ReplayFileError(f"{path}: missing column {', '.join(missing)} (need {','.join(REQUIRED)})")
    if df.height == 0:
        raise ReplayFileError(f"{path}: no rows")
    return df.select(REQUIRED)


def _first_bad(path: Path, mask: pl.Series, problem: str) -> None:
    if mask.any():
        row = int(mask.arg_true()[0]) + 1
        raise ReplayFileError(f"{path}: row {row}: {problem}")


def _numbers(path: Path, df: pl.DataFrame) -> pl.DataFrame:
    out = {}
    for name in (*_PRICES, "volume"):
        raw = df[name]
        _first_bad(path, raw.is_null(), f"empty {name}")
        text = raw.cast(pl.String).str.strip_chars() if raw.dtype == pl.String else raw
        number = text.cast(pl.Float64, strict=False)
        bad = number.is_null() | ~number.is_finite()
        if bad.any():
            row = int(bad.arg_true()[0])
            raise ReplayFileError(f"{path}: row {row + 1}: {name} {raw[row]!r} is not a number")
        out[name] = number
    return pl.DataFrame(out)


def _times_ns(path: Path, raw: pl.Series) -> pl.Series:
    """Epoch ns of each row's time, read by shared/barfile.py (the backtest reads the same way)."""
    _first_bad(path, raw.is_null(), "empty time")
    times = barfile.times_ns(raw)
    if times.is_null().any():
        row = int(times.is_null().arg_true()[0])
        shown = raw[row].strip() if isinstance(raw[row], str) else raw[row]
        raise ReplayFileError(f"{path}: row {row + 1}: time {shown!r} is not a date/time")
    return times


def _check_bars(path: Path, df: pl.DataFrame) -> None:
    for name in _PRICES:
        bad = df[name] <= 0
        if bad.any():
            row = int(bad.arg_true()[0])
            raise ReplayFileError(f"{path}: row {row + 1}: {name} {df[name][row]} is not a positive price")
    _first_bad(path, df["high"] < df["low"], "high is below low")
    for name in ("open", "close"):
        outside = (df[name] > df["high"]) | (df[name] < df["low"])
        _first_bad(path, outside, f"{name} is outside low..high")
    _first_bad(path, df["volume"] < 0, "volume is negative")


def _check_order(path: Path, symbols: pl.Series, times: pl.Series) -> None:
    frame = pl.DataFrame({"symbol": symbols, "t": times}).with_row_index("row")
    previous = frame.select(pl.col("t").shift(1).over("symbol")).to_series()
    bad = previous.is_not_null() & (frame["t"] <= previous)
    _first_bad(path, bad, "time is not after the previous row's for this symbol (rows must be in time order)")


def load_replay_file(path: Path) -> dict[str, list[SimBar]]:
    """Bars per symbol, in file order, which must be time order per symbol. Raises ReplayFileError."""
    df = _normalise_columns(path, _read(path))
    symbols = df["symbol"].cast(pl.String).str.strip_chars().str.to_uppercase()
    _first_bad(path, symbols.is_null() | (symbols == ""), "empty symbol")
    numbers = _numbers(path, df)
    _check_bars(path, numbers)
    times = _times_ns(path, df["time"])
    _check_order(path, symbols, times)
    bars: dict[str, list[SimBar]] = {}
    columns = zip(symbols, times, *(numbers[c] for c in (*_PRICES, "volume")), strict=True)
    for symbol, t, o, h, low, c, v in columns:
        bars.setdefault(symbol, []).append(
            SimBar(int(t), o, h, low, c, round(v), round((h + low + c) / 3, 4), 0)
        )
    return bars
