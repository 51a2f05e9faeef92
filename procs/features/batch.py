"""The feature set over a whole DataFrame of bars with polars: warm-up, replay and backtests.

Input columns: symbol, start_ns, bar_seconds, open, high, low, close, volume (any row order; the result is
sorted by symbol, start_ns). Output: the input, every name in FEATURES (null until defined), `warm`, and the
`_`-prefixed accumulators incremental.FeatureState is seeded from. Pure: a frame in, a frame out; it never
validates bars (validate.py does) and never touches the bus.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from procs.features.featureset import (
    ATR_N,
    BB_K,
    BB_N,
    EMA_FAST,
    EMA_SLOW,
    EXCHANGE_TZ,
    FEATURES,
    FLAT_STD,
    MACD_FAST,
    MACD_SIGNAL,
    MACD_SLOW,
    RETURN_HORIZONS,
    RSI_N,
    RVOL_N,
    SMA_FAST,
    SMA_SLOW,
    VOLUME_Z_N,
    WARM_BARS,
    ema_alpha,
    wilder_alpha,
)
from shared.messages import Bar

BAR_COLUMNS = ("symbol", "start_ns", "bar_seconds", "open", "high", "low", "close", "volume")
STATE_COLUMNS = (
    "_ema_fast",
    "_ema_slow",
    "_ema_macd_fast",
    "_ema_macd_slow",
    "_signal",
    "_avg_gain",
    "_avg_loss",
    "_atr",
    "_session",
    "_cum_pv",
    "_cum_v",
)
SCHEMA = {
    "symbol": pl.String,
    "start_ns": pl.Int64,
    "bar_seconds": pl.Int64,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
}

c, h, lo, v = pl.col("close"), pl.col("high"), pl.col("low"), pl.col("volume")
_i = pl.col("_i")


def bars_frame(bars: Sequence[Bar]) -> pl.DataFrame:
    """A DataFrame of bars with the input schema."""
    return pl.DataFrame(
        {name: [getattr(b, name) for b in bars] for name in BAR_COLUMNS}, schema=SCHEMA, orient="col"
    )


def _ewm(expr: pl.Expr, alpha: float) -> pl.Expr:
    # adjust=False: y0 = x0, y = (1 - a) y + a x -- the recursive form incremental.py keeps per bar
    return expr.ewm_mean(alpha=alpha, adjust=False, min_samples=1)


def _from(first_index: int, expr: pl.Expr) -> pl.Expr:
    """`expr` where the bar index is at least first_index, else null."""
    return pl.when(_i >= first_index).then(expr)


def _flat_safe_z(x: pl.Expr, mean: pl.Expr, std: pl.Expr, scale: float = 1.0) -> pl.Expr:
    return pl.when(std <= FLAT_STD * mean.abs()).then(0.0).otherwise((x - mean) / (scale * std))


def _per_symbol(named: dict[str, pl.Expr]) -> list[pl.Expr]:
    return [expr.over("symbol").alias(name) for name, expr in named.items()]


def _accumulators() -> list[pl.Expr]:
    prev = c.shift(1)
    d = c.diff()
    true_range = pl.max_horizontal(h - lo, (h - prev).abs(), (lo - prev).abs())  # first bar: high - low
    session = (
        pl.from_epoch("start_ns", time_unit="ns")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(EXCHANGE_TZ)
        .dt.date()
        .cast(pl.Int64)
    )
    return [
        *_per_symbol(
            {
                "_i": pl.int_range(pl.len()),
                "_ema_fast": _ewm(c, ema_alpha(EMA_FAST)),
                "_ema_slow": _ewm(c, ema_alpha(EMA_SLOW)),
                "_ema_macd_fast": _ewm(c, ema_alpha(MACD_FAST)),
                "_ema_macd_slow": _ewm(c, ema_alpha(MACD_SLOW)),
                "_avg_gain": _ewm(d.clip(lower_bound=0), wilder_alpha(RSI_N)),
                "_avg_loss": _ewm((-d).clip(lower_bound=0), wilder_alpha(RSI_N)),
                "_atr": _ewm(true_range, wilder_alpha(ATR_N)),
                "log_ret": (c / prev).log(),
            }
        ),
        session.alias("_session"),
    ]


def _rsi() -> pl.Expr:
    gain, loss = pl.col("_avg_gain"), pl.col("_avg_loss")
    flat = pl.when(gain > 0).then(100.0).otherwise(50.0)  # no losses at all: 100, no moves at all: 50
    return pl.when(loss == 0).then(flat).otherwise(100.0 - 100.0 / (1.0 + gain / loss))


def _windows() -> list[pl.Expr]:
    rolling = {f"ret_{k}": c / c.shift(k) - 1.0 for k in RETURN_HORIZONS}
    rolling |= {
        "sma_fast": c.rolling_mean(SMA_FAST),
        "sma_slow": c.rolling_mean(SMA_SLOW),
        "bb_z": _flat_safe_z(c, c.rolling_mean(BB_N), c.rolling_std(BB_N, ddof=0), BB_K),
        "volume_z": _flat_safe_z(v, v.rolling_mean(VOLUME_Z_N), v.rolling_std(VOLUME_Z_N, ddof=0)),
        "rvol_20": (pl.col("log_ret") ** 2).rolling_sum(RVOL_N).sqrt(),
        "_signal": _ewm(pl.col("macd"), ema_alpha(MACD_SIGNAL)),
    }
    by_session = ["symbol", "_session"]
    return [
        *_per_symbol(rolling),
        ((h + lo + c) / 3.0 * v).cum_sum().over(by_session).alias("_cum_pv"),
        v.cum_sum().over(by_session).alias("_cum_v"),
        _from(EMA_FAST - 1, pl.col("_ema_fast")).alias("ema_fast"),
        _from(EMA_SLOW - 1, pl.col("_ema_slow")).alias("ema_slow"),
        _from(RSI_N, _rsi()).alias("rsi_14"),
        _from(ATR_N - 1, pl.col("_atr")).alias("atr_14"),
    ]


def compute_features(bars: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Every feature for every bar, per symbol in start_ns order (see features.md for the formulas)."""
    vwap = pl.when(pl.col("_cum_v") > 0).then(pl.col("_cum_pv") / pl.col("_cum_v")).otherwise(c)
    signal = pl.col("_signal")
    first_signal = MACD_SLOW + MACD_SIGNAL - 2
    return (
        bars.lazy()
        .sort("symbol", "start_ns")
        .with_columns(_accumulators())
        .with_columns(_from(MACD_SLOW - 1, pl.col("_ema_macd_fast") - pl.col("_ema_macd_slow")).alias("macd"))
        .with_columns(_windows())
        .with_columns(
            _from(first_signal, signal).alias("macd_signal"),
            _from(first_signal, pl.col("macd") - signal).alias("macd_hist"),
            vwap.alias("vwap"),
            (c / vwap - 1.0).alias("vwap_dist"),
            (_i + 1 >= WARM_BARS).alias("warm"),
        )
        .select(*BAR_COLUMNS, *FEATURES, "warm", *STATE_COLUMNS)
        .collect()
    )
