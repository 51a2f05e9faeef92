"""Market data as an unmodified ib_async client sees it: contracts, quotes, real-time bars, history."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from ib_async import Stock

from tests.gateway_sim.sim_harness import connect, wait_until
from tests.support.sim import RunningSim

pytestmark = pytest.mark.timeout(60)


async def test_qualify_fills_con_id_and_an_unknown_symbol_gets_200(
    shared_sim: RunningSim, client_id: int
) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        aapl, spy, nope = (
            Stock("AAPL", "SMART", "USD"),
            Stock("SPY", "SMART", "USD"),
            Stock("NOPE", "SMART", "USD"),
        )
        result = await client.ib.qualifyContractsAsync(aapl, spy, nope)
        assert result[:2] == [aapl, spy] and result[2] is None
        assert (aapl.conId, aapl.primaryExchange, aapl.tradingClass) == (265598, "NASDAQ", "NMS")
        assert spy.conId == 756733 and spy.primaryExchange == "ARCA"
        assert 200 in client.codes()
        [details] = await client.ib.reqContractDetailsAsync(Stock(conId=265598))
        assert details.minTick == 0.01 and details.longName == "APPLE INC" and "0930" in details.liquidHours
    finally:
        client.ib.disconnect()


async def test_streaming_quotes_update_until_cancelled(shared_sim: RunningSim, client_id: int) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        ib = client.ib
        contract = Stock("MSFT", "SMART", "USD", conId=272093)
        updates: list[float] = []
        ticker = ib.reqMktData(contract)
        ticker.updateEvent.connect(lambda t: updates.append(t.last), keep_ref=True)
        await wait_until(lambda: len(updates) >= 6, what="six quote updates")
        assert 0 < ticker.bid < ticker.ask and ticker.bidSize > 0 and ticker.askSize > 0
        assert ticker.bid <= ticker.last <= ticker.ask or abs(ticker.last - ticker.bid) < 1.0
        assert ticker.volume > 0 and ticker.close > 0 and ticker.high >= ticker.low
        mine = [s for s in shared_sim.status()["sessions"] if s["client_id"] == client_id]
        assert mine[0]["market_data_lines"] == 1
        ib.cancelMktData(contract)
        await wait_until(
            lambda: (
                [s for s in shared_sim.status()["sessions"] if s["client_id"] == client_id][0][
                    "market_data_lines"
                ]
                == 0
            )
        )
        seen = len(updates)
        await asyncio.sleep(0.6)
        assert len(updates) == seen
    finally:
        client.ib.disconnect()


async def test_snapshot_quotes_end_with_tick_snapshot_end(shared_sim: RunningSim, client_id: int) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        contracts = [Stock(s, "SMART", "USD") for s in ("AAPL", "NVDA", "QQQ")]
        await client.ib.qualifyContractsAsync(*contracts)
        tickers = await client.ib.reqTickersAsync(*contracts)  # returns only after tickSnapshotEnd
        for t in tickers:
            assert t.bid > 0 and t.ask > t.bid and t.last > 0 and t.close > 0
    finally:
        client.ib.disconnect()


async def test_realtime_bars_arrive_every_five_simulated_seconds_and_match_history(
    shared_sim: RunningSim, client_id: int
) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        ib = client.ib
        contract = Stock("SPY", "SMART", "USD", conId=756733)
        bars = ib.reqRealTimeBars(contract, 5, "TRADES", False)
        await wait_until(lambda: len(bars) >= 4, what="four real-time bars")
        times = [b.time for b in bars]
        assert all(b - a == dt.timedelta(seconds=5) for a, b in zip(times, times[1:], strict=False))
        assert all(b.low <= min(b.open_, b.close) and b.high >= max(b.open_, b.close) for b in bars)
        ib.cancelRealTimeBars(bars)
        history = await ib.reqHistoricalDataAsync(
            contract, "", "300 S", "5 secs", "TRADES", False, formatDate=2
        )
        by_time = {h.date: h for h in history}
        for live in list(bars)[:3]:
            h = by_time[live.time]
            assert (h.open, h.high, h.low, h.close, h.volume) == (
                live.open_,
                live.high,
                live.low,
                live.close,
                live.volume,
            )
    finally:
        client.ib.disconnect()


async def test_history_in_usual_bar_sizes_and_daily_bars_are_dates(
    shared_sim: RunningSim, client_id: int
) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        ib = client.ib
        contract = Stock("AAPL", "SMART", "USD", conId=265598)
        minutes = await ib.reqHistoricalDataAsync(contract, "", "1 D", "1 min", "TRADES", False)
        assert len(minutes) > 100
        assert all(isinstance(b.date, dt.datetime) and b.date.tzinfo is not None for b in minutes)
        steps = {(b.date - a.date) for a, b in zip(minutes, minutes[1:], strict=False)}
        assert min(steps) == dt.timedelta(minutes=1)
        hours = await ib.reqHistoricalDataAsync(contract, "", "5 D", "1 hour", "MIDPOINT", True)
        assert hours and all(b.volume == -1 for b in hours)
        days = await ib.reqHistoricalDataAsync(contract, "", "30 D", "1 day", "TRADES", True)
        assert 15 <= len(days) <= 23 and all(type(b.date) is dt.date for b in days)
        assert all(b.low <= b.open <= b.high and b.volume > 0 for b in days)
        bad = await ib.reqHistoricalDataAsync(contract, "", "1 D", "7 parsecs", "TRADES", False)
        assert len(bad) == 0
        assert 162 in client.codes(), client.errors
    finally:
        client.ib.disconnect()


async def test_keep_up_to_date_history_receives_bar_updates(shared_sim: RunningSim, client_id: int) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        contract = Stock("QQQ", "SMART", "USD", conId=320227571)
        bars = await client.ib.reqHistoricalDataAsync(
            contract, "", "600 S", "1 min", "TRADES", False, keepUpToDate=True
        )
        start = len(bars)
        updates: list[bool] = []
        bars.updateEvent.connect(lambda b, has_new_bar: updates.append(has_new_bar), keep_ref=True)
        await wait_until(lambda: True in updates, what="a new bar from keepUpToDate")
        assert len(bars) > start
        client.ib.cancelHistoricalData(bars)
    finally:
        client.ib.disconnect()


async def test_current_time_follows_the_simulated_clock(shared_sim: RunningSim, client_id: int) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        first = await client.ib.reqCurrentTimeAsync()
        sim_time = dt.datetime.fromisoformat(shared_sim.status()["sim_time"])
        assert abs((sim_time - first).total_seconds()) < 60  # one real second is 60 simulated ones
    finally:
        client.ib.disconnect()
