"""The documented feature set: names, windows and conventions shared by the batch and incremental engines.

Both engines read their windows from here, so the two cannot drift apart; `features.md` gives each formula.
This module holds constants only: it must never compute anything or import polars/numpy.
"""

from __future__ import annotations

RETURN_HORIZONS = (1, 5, 15)  # bars
SMA_FAST, SMA_SLOW = 10, 30
EMA_FAST, EMA_SLOW = 10, 30
RSI_N = 14  # Wilder
ATR_N = 14  # Wilder
BB_N, BB_K = 20, 2.0
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
VOLUME_Z_N = 20
RVOL_N = 20

# A vector is warm once every feature is defined (34 bars for the MACD signal) and the slow averages have
# mostly forgotten the first close they were seeded with.
WARM_BARS = 50

# A rolling standard deviation below this fraction of the window's mean is a flat window: z-scores are 0
# there. Without it a flat overnight tape gives 0/0 in one engine and 1e-17/1e-17 in the other.
FLAT_STD = 1e-12

# Session VWAP restarts on the exchange's calendar date.
EXCHANGE_TZ = "America/New_York"

FEATURES = (
    "ret_1",
    "ret_5",
    "ret_15",
    "log_ret",
    "sma_fast",
    "sma_slow",
    "ema_fast",
    "ema_slow",
    "rsi_14",
    "atr_14",
    "bb_z",
    "macd",
    "macd_signal",
    "macd_hist",
    "vwap",
    "vwap_dist",
    "volume_z",
    "rvol_20",
)


def ema_alpha(span: int) -> float:
    """Smoothing factor of an EMA with this span: 2 / (span + 1)."""
    return 2.0 / (span + 1)


def wilder_alpha(n: int) -> float:
    """Wilder's smoothing (RMA): an EMA with alpha 1/n."""
    return 1.0 / n
