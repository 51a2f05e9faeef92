"""Each indicator against hand-checked values and against a second, textbook implementation written here.

The references use the other arithmetic on purpose: Wilder's `(prev * (n - 1) + x) / n`, the closed-form
weighted sum for EMAs, `statistics` for means and deviations, zoneinfo for session dates.
"""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from procs.features.batch import bars_frame, compute_features
from procs.features.incremental import FeatureState
from procs.features.synthetic import random_walk_bars
from shared.messages import Bar

NY = ZoneInfo("America/New_York")


def _features(bars: list[Bar]) -> list[dict[str, float]]:
    """Both engines; asserts they agree, returns the incremental values (NaN = undefined)."""
    state = FeatureState()
    live = [state.update(b) for b in bars]
    batch = compute_features(bars_frame(bars)).to_dicts()
    for row, values in zip(batch, live, strict=True):
        for name, value in values.items():
            if row[name] is None:
                assert math.isnan(value), name
            else:
                assert value == pytest.approx(row[name], abs=1e-9), name
    return live


def _bars(
    closes: list[float], highs: list[float] | None = None, lows: list[float] | None = None
) -> list[Bar]:
    out = []
    for i, c in enumerate(closes):
        o = closes[i - 1] if i else c
        h = highs[i] if highs else max(o, c)
        low = lows[i] if lows else min(o, c)
        out.append(Bar(symbol="T", start_ns=1_709_562_600_000_000_000 + i * 60 * 10**9, bar_seconds=60,
                       open=o, high=h, low=low, close=c, volume=100.0 + i))  # fmt: skip
    return out


# ------------------------------------------------------------------ hand-checked small cases


def test_returns_and_log_return_by_hand() -> None:
    closes = [100.0 + i for i in range(16)]  # 100 .. 115
    last = _features(_bars(closes))[-1]
    assert last["ret_1"] == pytest.approx(115 / 114 - 1)
    assert last["ret_5"] == pytest.approx(115 / 110 - 1)
    assert last["ret_15"] == pytest.approx(115 / 100 - 1)
    assert last["log_ret"] == pytest.approx(math.log(115 / 114))


def test_ema_of_a_step_by_hand() -> None:
    # ten closes of 10 then one of 21: the fast EMA (span 10, alpha 2/11) moves 2/11 of the way: 10 + 11*2/11 = 12
    values = _features(_bars([10.0] * 10 + [21.0]))
    assert values[9]["ema_fast"] == pytest.approx(10.0)
    assert values[10]["ema_fast"] == pytest.approx(12.0)
    assert values[10]["sma_fast"] == pytest.approx((9 * 10 + 21) / 10)


def test_rsi_is_100_when_only_rising_50_when_flat_and_by_hand_on_a_zigzag() -> None:
    assert _features(_bars([float(i) for i in range(1, 20)]))[-1]["rsi_14"] == 100.0
    assert _features(_bars([5.0] * 20))[-1]["rsi_14"] == 50.0
    # +2, -1 alternating: Wilder averages seeded with the first change (+2: gain 2, loss 0), alpha 1/14
    closes = [10.0]
    for i in range(16):
        closes.append(closes[-1] + (2.0 if i % 2 == 0 else -1.0))
    gain, loss = 2.0, 0.0
    for i in range(1, 16):
        up = i % 2 == 0
        gain = (gain * 13 + (2.0 if up else 0.0)) / 14
        loss = (loss * 13 + (0.0 if up else 1.0)) / 14
    expected = 100 - 100 / (1 + gain / loss)
    assert _features(_bars(closes))[-1]["rsi_14"] == pytest.approx(expected, abs=1e-12)


def test_atr_of_constant_two_dollar_ranges_is_two() -> None:
    closes = [50.0] * 20
    values = _features(_bars(closes, highs=[51.0] * 20, lows=[49.0] * 20))
    assert math.isnan(values[12]["atr_14"])  # defined from the 14th bar
    assert values[13]["atr_14"] == pytest.approx(2.0)
    assert values[-1]["atr_14"] == pytest.approx(2.0)


def test_atr_uses_the_gap_from_the_previous_close() -> None:
    # bar 1 gaps up: its range is 1 but |high 16 - previous close 10.5| = 5.5 is its true range
    highs, lows, closes = [11.0, 16.0], [10.0, 15.0], [10.5, 15.5]
    state = FeatureState()
    for b in _bars(closes, highs, lows):
        state.update(b)
    assert state.atr == pytest.approx((1.0 * 13 + 5.5) / 14)  # Wilder: (previous ATR * 13 + TR) / 14


def test_bollinger_z_by_hand() -> None:
    closes = [10.0] * 19 + [20.0]  # mean 10.5, population std sqrt(19 * 0.25 + 90.25) / sqrt(20)
    std = math.sqrt((19 * 0.5**2 + 9.5**2) / 20)
    assert _features(_bars(closes))[-1]["bb_z"] == pytest.approx((20 - 10.5) / (2 * std))
    assert _features(_bars([10.0] * 20))[-1]["bb_z"] == 0.0  # flat: 0, not 0/0


def test_session_vwap_restarts_on_the_new_york_date() -> None:
    # 23:30 and 00:30 New York on either side of midnight (04:30 / 05:30 UTC in winter), typical price = close
    first = int(datetime(2024, 3, 5, 4, 30, tzinfo=UTC).timestamp()) * 10**9
    bars = [
        Bar(symbol="T", start_ns=first, bar_seconds=60, open=10, high=10, low=10, close=10, volume=100),
        Bar(
            symbol="T",
            start_ns=first + 60 * 10**9,
            bar_seconds=60,
            open=12,
            high=12,
            low=12,
            close=12,
            volume=300,
        ),
        Bar(
            symbol="T",
            start_ns=first + 3600 * 10**9,
            bar_seconds=60,
            open=20,
            high=20,
            low=20,
            close=20,
            volume=5,
        ),
    ]
    values = _features(bars)
    assert values[1]["vwap"] == pytest.approx((10 * 100 + 12 * 300) / 400)
    assert values[1]["vwap_dist"] == pytest.approx(12 / 11.5 - 1)
    assert values[2]["vwap"] == pytest.approx(20.0)  # new date in New York, though still 5 March in UTC


# ------------------------------------------------------------------ a second implementation over random bars


def _ema_closed_form(xs: list[float], span: int) -> float:
    a = 2 / (span + 1)
    t = len(xs) - 1
    return (1 - a) ** t * xs[0] + sum(a * (1 - a) ** (t - i) * xs[i] for i in range(1, t + 1))


def _wilder(xs: list[float], n: int) -> float:
    avg = xs[0]
    for x in xs[1:]:
        avg = (avg * (n - 1) + x) / n
    return avg


def _reference(bars: list[Bar], i: int) -> dict[str, float]:
    c = [b.close for b in bars[: i + 1]]
    v = [b.volume for b in bars[: i + 1]]
    r = [math.log(c[k] / c[k - 1]) for k in range(1, len(c))]
    diffs = [c[k] - c[k - 1] for k in range(1, len(c))]
    tr = [bars[0].high - bars[0].low] + [
        max(b.high - b.low, abs(b.high - c[k - 1]), abs(b.low - c[k - 1]))
        for k, b in enumerate(bars[1 : i + 1], 1)
    ]
    macd_series = [
        _ema_closed_form(c[: k + 1], 12) - _ema_closed_form(c[: k + 1], 26) for k in range(25, i + 1)
    ]
    gain, loss = _wilder([max(d, 0) for d in diffs], 14), _wilder([max(-d, 0) for d in diffs], 14)
    day = datetime.fromtimestamp(bars[i].start_ns / 1e9, tz=NY).date()
    session = [b for b in bars[: i + 1] if datetime.fromtimestamp(b.start_ns / 1e9, tz=NY).date() == day]
    vwap = sum((b.high + b.low + b.close) / 3 * b.volume for b in session) / sum(b.volume for b in session)
    signal = _ema_closed_form(macd_series, 9)
    return {
        "ret_1": c[-1] / c[-2] - 1,
        "ret_5": c[-1] / c[-6] - 1,
        "ret_15": c[-1] / c[-16] - 1,
        "log_ret": r[-1],
        "sma_fast": statistics.fmean(c[-10:]),
        "sma_slow": statistics.fmean(c[-30:]),
        "ema_fast": _ema_closed_form(c, 10),
        "ema_slow": _ema_closed_form(c, 30),
        "rsi_14": 100 - 100 / (1 + gain / loss),
        "atr_14": _wilder(tr, 14),
        "bb_z": (c[-1] - statistics.fmean(c[-20:])) / (2 * statistics.pstdev(c[-20:])),
        "macd": macd_series[-1],
        "macd_signal": signal,
        "macd_hist": macd_series[-1] - signal,
        "vwap": vwap,
        "vwap_dist": c[-1] / vwap - 1,
        "volume_z": (v[-1] - statistics.fmean(v[-20:])) / statistics.pstdev(v[-20:]),
        "rvol_20": math.sqrt(sum(x * x for x in r[-20:])),
    }


@pytest.mark.parametrize("seed", [11, 12])
def test_every_feature_matches_the_textbook_reference(seed: int) -> None:
    bars = random_walk_bars("X", 160, seed=seed, vol=3e-3)
    # cross New York midnight halfway, so the session VWAP restart is part of the comparison
    bars = [
        msgspec.structs.replace(b, start_ns=b.start_ns + (8 * 3600 * 10**9 if k >= 80 else 0))
        for k, b in enumerate(bars)
    ]
    values = _features(bars)
    for i in (60, 79, 80, 81, 159):
        expected = _reference(bars, i)
        for name, want in expected.items():
            assert values[i][name] == pytest.approx(want, rel=1e-9, abs=1e-10), f"bar {i} {name}"
