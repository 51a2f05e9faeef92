"""The one reading of a bar file's time column, shared by the simulator's replay and the backtest.

Both read CSV or parquet with columns symbol,time,open,high,low,close,volume; this module decides which
column is the time and what each time cell means, so a file one of them accepts, the other accepts. A time
is a bar's start, as UTC epoch nanoseconds. Accepted: parquet datetimes (naive = UTC) and dates; ISO 8601
(UTC unless it carries an offset, "Z" too); IB's "YYYYMMDD HH:MM:SS" and "YYYYMMDD"; whole epoch numbers,
scaled by size (seconds, ms, us or ns); decimal epoch seconds. It must never guess a time for a cell it
cannot read: that cell is null, and the caller refuses the file naming the row.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

NS = 1_000_000_000
COLUMNS = ("symbol", "time", "open", "high", "low", "close", "volume")
TIME_ALIASES = ("date", "datetime", "timestamp")  # what other tools call the time column
_ZONED_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
_NAIVE_FORMATS = (  # read as UTC
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y%m%d %H:%M:%S",
    "%Y-%m-%d",
    "%Y%m%d",
)
# epoch numbers by size: below 1e11 seconds (up to year 5138), then ms, us; anything bigger is already ns
_EPOCH_SCALES = ((10**11, NS), (10**14, 10**6), (10**17, 10**3))


def normalise_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Column names stripped and lower-cased; a date/datetime/timestamp column taken as `time` when none is."""
    frame = frame.rename({name: name.strip().lower() for name in frame.columns})
    if "time" not in frame.columns:
        alias = next((a for a in TIME_ALIASES if a in frame.columns), None)
        if alias is not None:
            frame = frame.rename({alias: "time"})
    return frame


def _whole_epoch(ints: pl.Series) -> pl.Series:
    size = ints.abs()
    scaled = (
        pl.when(size < _EPOCH_SCALES[0][0])
        .then(ints * _EPOCH_SCALES[0][1])
        .when(size < _EPOCH_SCALES[1][0])
        .then(ints * _EPOCH_SCALES[1][1])
        .when(size < _EPOCH_SCALES[2][0])
        .then(ints * _EPOCH_SCALES[2][1])
        .otherwise(ints)
    )
    return pl.select(scaled.alias("t")).to_series().cast(pl.Int64)


def _iso_ns(text: str | None) -> int | None:
    """Python's ISO 8601 reader, for the forms the fixed formats above miss (no seconds, a "Z", ...)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * NS + moment.microsecond * 1000


def _text_times_ns(raw: pl.Series) -> pl.Series:
    text = raw.cast(pl.String).str.strip_chars()
    whole = text.str.contains(r"^-?[0-9]+$") & (text.str.len_chars() != 8)  # 8 digits is IB's YYYYMMDD
    ints = text.cast(pl.Int64, strict=False)
    best = _whole_epoch(ints).zip_with(whole.fill_null(False), pl.Series([None] * len(text), dtype=pl.Int64))
    for fmt in _ZONED_FORMATS + _NAIVE_FORMATS:
        zone = "UTC" if fmt in _ZONED_FORMATS else None
        parsed = text.str.to_datetime(fmt, strict=False, time_zone=zone, time_unit="ns")
        best = best.fill_null(parsed.dt.epoch("ns"))
    if best.is_null().any():
        iso = pl.Series(
            [_iso_ns(t) if b is None else None for t, b in zip(text, best, strict=True)], dtype=pl.Int64
        )
        best = best.fill_null(iso)
    seconds = text.cast(pl.Float64, strict=False)
    seconds = seconds.set(~seconds.is_finite().fill_null(False), None)
    return best.fill_null((seconds * 1e9).cast(pl.Int64, strict=False))


def times_ns(raw: pl.Series) -> pl.Series:
    """The time column as Int64 UTC epoch ns; null where a cell is empty or not a time the module accepts."""
    if raw.dtype == pl.Date:
        return raw.cast(pl.Datetime("ns")).dt.epoch("ns").cast(pl.Int64)
    if isinstance(raw.dtype, pl.Datetime):
        moment = raw.dt.convert_time_zone("UTC") if raw.dtype.time_zone else raw
        return moment.dt.cast_time_unit("ns").dt.epoch("ns").cast(pl.Int64)
    if raw.dtype.is_integer():
        return _whole_epoch(raw.cast(pl.Int64))
    if raw.dtype.is_numeric():  # fractional epoch seconds
        return (raw.cast(pl.Float64) * 1e9).cast(pl.Int64, strict=False)
    return _text_times_ns(raw)
