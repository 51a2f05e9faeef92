"""Synthetic bars for tests, benchmarks and demos: a seeded geometric random walk with plausible OHLCV.

Deterministic for a given seed; bars are back to back from `start_ns` (09:30 New York on 2024-03-04 by
default, so 5-second bars aggregate from a session open). Never used on a live path.
"""

from __future__ import annotations

import numpy as np

from procs.features.bars import NS
from shared.messages import Bar

SESSION_OPEN_2024_03_04 = 1_709_562_600 * NS  # 2024-03-04 09:30 America/New_York (14:30 UTC)


def random_walk_bars(
    symbol: str,
    n: int,
    *,
    bar_seconds: int = 60,
    start_ns: int = SESSION_OPEN_2024_03_04,
    seed: int = 0,
    price: float = 100.0,
    vol: float = 1e-3,
) -> list[Bar]:
    """`n` consecutive bars of one symbol; open = previous close, high/low bracket both."""
    rng = np.random.default_rng(seed)
    closes = price * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    opens = np.concatenate(([price], closes[:-1]))
    highs = np.maximum(opens, closes) * (1 + rng.uniform(0, vol, n))
    lows = np.minimum(opens, closes) * (1 - rng.uniform(0, vol, n))
    volumes = rng.integers(100, 10_000, n).astype(float)
    step = bar_seconds * NS
    return [
        Bar(
            symbol=symbol,
            start_ns=start_ns + i * step,
            bar_seconds=bar_seconds,
            open=float(opens[i]),
            high=float(highs[i]),
            low=float(lows[i]),
            close=float(closes[i]),
            volume=float(volumes[i]),
            wap=float((highs[i] + lows[i] + closes[i]) / 3),
            count=int(volumes[i] // 100),
        )
        for i in range(n)
    ]
