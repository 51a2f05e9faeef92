"""The simulated market: deterministic tick-rounded paths, bars and history that agree, replay files, the clock."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from procs.gateway_sim.contracts import DEFAULT_CONTRACTS, contract_by_con_id, find_contract
from procs.gateway_sim.market import (
    Market,
    ReplayFileError,
    SimBar,
    SimClock,
    default_sim_start,
    load_replay_file,
)

REPO = Path(__file__).resolve().parents[2]
S = 10**9
FRIDAY_OPEN = int(datetime(2026, 11, 20, 14, 30, tzinfo=UTC).timestamp()) * S  # 09:30 New York
SATURDAY = int(datetime(2026, 11, 21, tzinfo=UTC).timestamp()) * S


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(DEFAULT_CONTRACTS, seed=7)


def on_tick(x: float, tick: str = "0.01") -> bool:
    return Decimal(repr(x)) % Decimal(tick) == 0


def aggregate(bars: list[SimBar]) -> tuple[float, float, float, float, int]:
    return (
        bars[0].open,
        max(b.high for b in bars),
        min(b.low for b in bars),
        bars[-1].close,
        sum(b.volume for b in bars),
    )


def ohlcv(b: SimBar) -> tuple[float, float, float, float, int]:
    return b.open, b.high, b.low, b.close, b.volume


# --- determinism --------------------------------------------------------------------------------------------


def test_same_seed_symbol_and_time_give_the_same_prices_in_another_process(market: Market) -> None:
    times = [FRIDAY_OPEN + k * 7_777_777_777 for k in range(5)] + [FRIDAY_OPEN - 400 * 86_400 * S]
    code = (
        "import json,sys; from procs.gateway_sim.market import Market;"
        "from procs.gateway_sim.contracts import DEFAULT_CONTRACTS as C;"
        "m=Market(C, seed=7); ts=json.loads(sys.argv[1]);"
        "print(json.dumps([[m.price_at(s,t) for t in ts] for s in ('AAPL','SPY')]"
        "+[[getattr(m.bar('AAPL', ts[0], 300), f) for f in ('open','high','low','close','volume')]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(times)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    theirs = json.loads(out.stdout)
    fresh = Market(DEFAULT_CONTRACTS, seed=7)
    ours = [[fresh.price_at(s, t) for t in times] for s in ("AAPL", "SPY")]
    ours.append(list(ohlcv(fresh.bar("AAPL", times[0], 300))))
    assert theirs == ours
    assert ours[0] == [market.price_at("AAPL", t) for t in times]  # and a warm cache agrees with a cold one


def test_another_seed_or_symbol_gives_another_path(market: Market) -> None:
    times = [FRIDAY_OPEN + k * 60 * S for k in range(30)]
    aapl = [market.price_at("AAPL", t) for t in times]
    assert aapl != [Market(DEFAULT_CONTRACTS, seed=8).price_at("AAPL", t) for t in times]
    assert [p / aapl[0] for p in aapl] != [
        market.price_at("MSFT", t) / market.price_at("MSFT", times[0]) for t in times
    ]


def test_walk_stays_near_the_contract_price_over_the_years(market: Market) -> None:
    start = DEFAULT_CONTRACTS["AAPL"].start_price
    for years in (-10, -1, 0, 1, 5):
        price = market.price_at("AAPL", FRIDAY_OPEN + years * 365 * 86_400 * S)
        assert start / 4 < price < start * 4


# --- shape of the path --------------------------------------------------------------------------------------


def test_five_second_bars_are_on_the_tick_positive_and_well_formed(market: Market) -> None:
    bars = [market.bar("NVDA", FRIDAY_OPEN - 3600 * S + k * 5 * S, 5) for k in range(0, 10 * 720, 7)]
    for b in bars:
        assert all(on_tick(x) and x > 0 for x in (b.open, b.high, b.low, b.close))
        assert b.low <= min(b.open, b.close) and max(b.open, b.close) <= b.high
        assert b.low <= b.wap <= b.high
    assert len({b.close for b in bars}) > 100  # it moves


def test_price_inside_a_bucket_stays_within_its_bar_and_starts_at_its_open(market: Market) -> None:
    for k in range(200):
        start = FRIDAY_OPEN + k * 5 * S
        bar = market.bar("TSLA", start, 5)
        assert market.price_at("TSLA", start) == bar.open
        seen = [market.price_at("TSLA", start + q * 250_000_000) for q in range(20)]
        assert all(bar.low <= p <= bar.high and on_tick(p) for p in seen)
        assert market.bar("TSLA", start + 5 * S, 5).open == bar.close


def test_prices_stand_still_and_nothing_trades_on_a_weekend(market: Market) -> None:
    day = market.bar("AAPL", SATURDAY, 86_400)
    assert day.volume == 0
    assert day.high == day.low == day.open == day.close
    assert day.close == market.bar("AAPL", SATURDAY - 5 * S, 5).close  # where Friday night left it


def test_volume_is_u_shaped_over_the_regular_session(market: Market) -> None:
    first = last = middle = 0
    for day in range(5):  # Monday 16 .. Friday 20 November 2026
        open_ns = FRIDAY_OPEN - (4 - day) * 86_400 * S
        first += market.bar("SPY", open_ns + 5 * S, 1800).volume  # after the opening auction
        middle += market.bar("SPY", open_ns + 3 * 3600 * S, 1800).volume
        last += market.bar("SPY", open_ns + 6 * 3600 * S, 1795).volume  # before the closing auction
    assert first > 1.5 * middle and last > 1.5 * middle


def test_quotes_bracket_the_last_price(market: Market) -> None:
    for q in range(400):
        t = FRIDAY_OPEN + q * 250_000_000
        bid, ask, last, bid_size, ask_size, last_size = market.quote("AAPL", t)
        assert bid < ask and bid <= last <= ask and on_tick(bid) and on_tick(ask)
        assert bid_size > 0 and ask_size > 0 and last_size >= 0
        assert (bid, ask, last, bid_size, ask_size, last_size) == market.quote("AAPL", t)


# --- history agrees with live bars ----------------------------------------------------------------------------


@pytest.mark.parametrize("bar_seconds", [5, 60, 300, 900, 3600])
def test_history_bars_aggregate_the_same_five_second_bars(market: Market, bar_seconds: int) -> None:
    end = FRIDAY_OPEN + 5 * 1800 * S  # 12:00 New York
    history = market.history("MSFT", end, 4 * 3600, bar_seconds)
    assert history and all(b.start_ns % (bar_seconds * S) == 0 for b in history)
    assert history[-1].start_ns + bar_seconds * S == end
    for b in history[:: max(1, len(history) // 12)]:
        fives = [market.bar("MSFT", b.start_ns + k * 5 * S, 5) for k in range(bar_seconds // 5)]
        assert ohlcv(b) == aggregate([f for f in fives])
        assert ohlcv(b) == ohlcv(market.bar("MSFT", b.start_ns, bar_seconds))


def test_daily_history_has_one_bar_per_session_agreeing_with_the_day(market: Market) -> None:
    end = SATURDAY  # after Friday's session
    daily = market.history("AAPL", end, 14 * 86_400, 86_400)
    days = [datetime.fromtimestamp(b.start_ns / S, UTC).date().isoformat() for b in daily]
    assert days == [f"2026-11-{d:02d}" for d in (9, 10, 11, 12, 13, 16, 17, 18, 19, 20)]  # no weekends
    friday = daily[-1]
    assert ohlcv(friday) == ohlcv(market.bar("AAPL", friday.start_ns, 86_400))
    assert daily[-2].close == friday.open  # nothing moved overnight


def test_a_history_ending_mid_bar_ends_with_the_bar_so_far(market: Market) -> None:
    end = FRIDAY_OPEN + 10 * 60 * S + 20 * S
    history = market.history("QQQ", end, 1800, 60)
    last = history[-1]
    assert last.start_ns == FRIDAY_OPEN + 10 * 60 * S
    assert ohlcv(last) == ohlcv(market.bar("QQQ", last.start_ns, 20))


def test_regular_hours_history_holds_only_session_bars(market: Market) -> None:
    end = FRIDAY_OPEN + 3600 * S
    everything = market.history("AAPL", end, 4 * 3600, 300)
    rth = market.history("AAPL", end, 4 * 3600, 300, rth_only=True)
    assert len(rth) == 12 and rth[0].start_ns == FRIDAY_OPEN
    assert len(everything) == 48  # pre-market trades too, from 04:00
    hourly = market.history("AAPL", end, 86_400 * 2, 3600, rth_only=True)
    assert [b.start_ns for b in hourly[-2:]] == [
        FRIDAY_OPEN,
        FRIDAY_OPEN + 1800 * S,
    ]  # 09:30 (cut by the open), 10:00


def test_quote_based_history_is_shifted_and_has_no_volume(market: Market) -> None:
    end = FRIDAY_OPEN + 600 * S
    trades = market.history("AAPL", end, 600, 60)
    bids = market.history("AAPL", end, 600, 60, what="BID")
    assert [round(t.close - b.close, 2) for t, b in zip(trades, bids, strict=True)] == [0.01] * len(trades)
    assert {b.volume for b in bids} == {-1}


@pytest.mark.parametrize(
    ("bar_seconds", "what"), [(7, "TRADES"), (7 * 86_400, "TRADES"), (60, "OPTION_IMPLIED")]
)
def test_unsupported_history_requests_are_refused(market: Market, bar_seconds: int, what: str) -> None:
    with pytest.raises(ValueError, match="not supported"):
        market.history("AAPL", FRIDAY_OPEN, 3600, bar_seconds, what)


def test_unknown_symbol_is_refused(market: Market) -> None:
    with pytest.raises(KeyError, match="ZZZZ"):
        market.price_at("ZZZZ", FRIDAY_OPEN)


# --- replay files ---------------------------------------------------------------------------------------------

REPLAY_CSV = """symbol,time,open,high,low,close,volume
AAPL,2026-11-20 14:30:00,200.00,201.50,199.50,201.00,10000
AAPL,2026-11-20 14:31:00,201.00,201.20,200.10,200.50,8000
AAPL,2026-11-20 14:32:00,200.50,203.00,200.50,202.75,12001
XYZ,2026-11-20 14:30:00,10.00,10.10,9.90,10.05,500
"""


def test_replayed_symbols_follow_the_file_and_the_others_keep_walking(short_tmp: Path) -> None:
    path = short_tmp / "bars.csv"
    path.write_text(REPLAY_CSV)
    replay = load_replay_file(path)
    assert sorted(replay) == ["AAPL", "XYZ"] and len(replay["AAPL"]) == 3
    market = Market(DEFAULT_CONTRACTS, seed=7, replay=replay)
    expected = [
        (200.0, 201.5, 199.5, 201.0, 10000),
        (201.0, 201.2, 200.1, 200.5, 8000),
        (200.5, 203.0, 200.5, 202.75, 12001),
    ]
    assert [ohlcv(market.bar("AAPL", FRIDAY_OPEN + m * 60 * S, 60)) for m in range(3)] == expected
    assert [ohlcv(b) for b in market.history("AAPL", FRIDAY_OPEN + 180 * S, 180, 60)] == expected
    assert market.price_at("AAPL", FRIDAY_OPEN - 3600 * S) == 200.0  # before the file: its first open
    assert market.price_at("AAPL", FRIDAY_OPEN + 7200 * S) == 202.75  # after it: its last close
    assert ohlcv(market.bar("XYZ", FRIDAY_OPEN, 60)) == (10.0, 10.1, 9.9, 10.05, 500)
    assert market.price_at("MSFT", FRIDAY_OPEN) == Market(DEFAULT_CONTRACTS, seed=7).price_at(
        "MSFT", FRIDAY_OPEN
    )


def test_parquet_replay_with_datetime_column(short_tmp: Path) -> None:
    frame = pl.read_csv(REPLAY_CSV.encode()).with_columns(
        pl.col("time").str.to_datetime().dt.replace_time_zone("UTC")
    )
    path = short_tmp / "bars.parquet"
    frame.write_parquet(path)
    replay = load_replay_file(path)
    assert replay == load_replay_file(_write(short_tmp, REPLAY_CSV))


def _write(folder: Path, text: str) -> Path:
    path = folder / "bad.csv"
    path.write_text(text)
    return path


HEADER = "symbol,time,open,high,low,close,volume\n"
GOOD_ROW = "AAPL,2026-11-20 14:30:00,1,2,0.5,1.5,100\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("symbol,time,open,high,low,volume\nAAPL,2026-11-20,1,2,0.5,100\n", r"missing column close"),
        (
            HEADER + GOOD_ROW + "AAPL,2026-11-20 14:31:00,1,abc,0.5,1.5,100\n",
            r"row 2: high 'abc' is not a number",
        ),
        (HEADER + GOOD_ROW + "AAPL,2026-11-20 14:31:00,1,0.4,0.5,0.45,100\n", r"row 2: high is below low"),
        (HEADER + "AAPL,2026-11-20 14:30:00,0,2,0,1,100\n", r"row 1: open 0.0 is not a positive price"),
        (HEADER + GOOD_ROW + "AAPL,2026-11-20 14:29:00,1,2,0.5,1.5,100\n", r"row 2: time is not after"),
        (
            HEADER + GOOD_ROW + "AAPL,yesterday,1,2,0.5,1.5,100\n",
            r"row 2: time 'yesterday' is not a date/time",
        ),
        (HEADER, r"no rows"),
    ],
)
def test_a_bad_replay_file_is_refused_with_one_line_naming_file_row_and_problem(
    short_tmp: Path, text: str, problem: str
) -> None:
    path = _write(short_tmp, text)
    with pytest.raises(ReplayFileError) as caught:
        load_replay_file(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert re.search(problem, message), message


def test_a_missing_replay_file_is_refused_in_one_line(short_tmp: Path) -> None:
    with pytest.raises(ReplayFileError, match=r"bars\.csv: cannot read"):
        load_replay_file(short_tmp / "bars.csv")


# --- clock, sessions, contracts -------------------------------------------------------------------------------


def test_clock_runs_at_its_speed_from_its_start() -> None:
    start = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    clock = SimClock(start, speed=60.0)
    assert abs(clock.now_ns() - FRIDAY_OPEN) < 5 * S  # generous: a loaded machine may stall
    time.sleep(0.05)
    assert clock.now_ns() - FRIDAY_OPEN >= 3 * S  # 0.05 s real x 60
    assert clock.real_seconds_until(clock.now_ns() + 60 * S) <= 1.0
    assert clock.real_seconds_until(FRIDAY_OPEN) == 0.0
    assert abs(SimClock().now().timestamp() - time.time()) < 5


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2026, 11, 21, 12, 0, tzinfo=UTC), datetime(2026, 11, 20, 14, 30, tzinfo=UTC)),  # Saturday
        (
            datetime(2026, 11, 23, 13, 0, tzinfo=UTC),
            datetime(2026, 11, 20, 14, 30, tzinfo=UTC),
        ),  # Monday pre-open
        (
            datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
            datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
        ),  # in a session
        (
            datetime(2026, 11, 26, 18, 0, tzinfo=UTC),
            datetime(2026, 11, 25, 14, 30, tzinfo=UTC),
        ),  # Thanksgiving
        (
            datetime(2026, 7, 6, 12, 0, tzinfo=UTC),
            datetime(2026, 7, 2, 13, 30, tzinfo=UTC),
        ),  # summer time, July 3 holiday
    ],
)
def test_default_sim_start_is_the_latest_session_open(now: datetime, start: datetime) -> None:
    assert default_sim_start(now) == start


def test_contract_table_has_the_usual_names_with_unique_con_ids() -> None:
    assert len(DEFAULT_CONTRACTS) >= 60
    assert {"AAPL", "MSFT", "SPY", "QQQ", "AMZN", "NVDA", "GOOGL", "META", "TSLA", "IWM"} <= set(
        DEFAULT_CONTRACTS
    )
    assert len({c.con_id for c in DEFAULT_CONTRACTS.values()}) == len(DEFAULT_CONTRACTS)


def test_find_contract_matches_like_ib_and_fills_the_hours() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    aapl = find_contract("aapl", now=now)
    assert aapl is not None and aapl.con_id == 265598 and aapl.min_tick == Decimal("0.01")
    assert aapl.liquid_hours.startswith("20261121:CLOSED;20261122:CLOSED;20261123:0930-20261123:1600")
    assert "20261127:0930-20261127:1300" in aapl.liquid_hours  # the day after Thanksgiving closes early
    assert "20261123:0400-20261123:2000" in aapl.trading_hours
    assert find_contract("AAPL", "STK", "USD", "NASDAQ", now=now) == aapl
    assert find_contract("ZZZZ") is None
    assert find_contract("AAPL", sec_type="FUT") is None
    assert find_contract("AAPL", currency="EUR") is None
    assert contract_by_con_id(756733, now=now) == find_contract("SPY", now=now)
    assert contract_by_con_id(1) is None
