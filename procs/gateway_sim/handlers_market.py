"""Market-data requests: contract details, quotes (streaming and snapshot), real-time bars, history, time.

Each handler reads one parsed request and answers on its session, in the layouts of `wire.py`. Prices come
from the server's Market at the simulated time, never from the future. Nothing here blocks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from procs.gateway_sim import wire
from procs.gateway_sim.subscriptions import BarSub, LiveHistorySub, MarketSub
from procs.gateway_sim.wire import BarRow
from procs.gateway_sim.wire_requests import (
    as_int,
    parse_contract_details,
    parse_head_timestamp,
    parse_historical,
    parse_market_data,
    parse_realtime_bars,
    req_id_at,
)

if TYPE_CHECKING:
    from procs.gateway_sim.contracts import SimContract
    from procs.gateway_sim.market import SimBar
    from procs.gateway_sim.session import Session

NEW_YORK = ZoneInfo("US/Eastern")
BUCKET_NS = 5 * 10**9
MAX_HISTORY_BARS = 100_000
_BAR_UNITS = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600, "day": 86400}
_DURATION_UNITS = {"S": 1, "D": 86400, "W": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}


def contract_details(session: Session, fields: list[str]) -> None:
    req_id, query = parse_contract_details(fields)
    contract = session.server.resolve(query)
    if contract is None:
        session.error(req_id, 200)  # a real Gateway sends no end marker after 200
        return
    details = wire.contract_details(req_id, contract, version=session.version)
    session.send(details + wire.contract_details_end(req_id), 2)


def market_data(session: Session, fields: list[str]) -> None:
    req = parse_market_data(fields)
    server = session.server
    contract = server.resolve(req.contract)
    if contract is None:
        session.error(req.req_id, 200)
        return
    if server.faults.competing_session:
        session.error(req.req_id, 10197)
        return
    now = server.clock.now_ns()
    messages = [wire.market_data_type(req.req_id, session.data_type)]
    if not server.faults.streams_paused:
        messages += opening_ticks(session, req.req_id, contract, now)
    if req.snapshot:
        messages.append(wire.tick_snapshot_end(req.req_id))
    else:
        session.subs.market[req.req_id] = MarketSub(contract)
    session.send(b"".join(messages), len(messages))


def opening_ticks(session: Session, req_id: int, contract: SimContract, now_ns: int) -> list[bytes]:
    market = session.server.market
    sym = contract.symbol
    day = market.day_bar(sym, now_ns)
    bid, ask, last, bid_size, ask_size, last_size = market.quote(sym, now_ns)
    return [
        wire.tick_price(req_id, 1, bid, bid_size),
        wire.tick_price(req_id, 2, ask, ask_size),
        wire.tick_price(req_id, 4, last, last_size),
        wire.tick_size(req_id, 8, day.volume),
        wire.tick_price(req_id, 6, day.high, 0),
        wire.tick_price(req_id, 7, day.low, 0),
        wire.tick_price(req_id, 9, market.prev_close(sym, now_ns), 0),
        wire.tick_price(req_id, 14, day.open, 0),
    ]


def cancel_market_data(session: Session, fields: list[str]) -> None:
    session.subs.market.pop(req_id_at(fields, 2, "cancelMktData"), None)


def market_data_type(session: Session, fields: list[str]) -> None:
    session.data_type = as_int(fields[2] if len(fields) > 2 else "", "reqMarketDataType", 1) or 1


def realtime_bars(session: Session, fields: list[str]) -> None:
    req_id, query = parse_realtime_bars(fields)
    contract = session.server.resolve(query)
    if contract is None:
        session.error(req_id, 200)
        return
    now = session.server.clock.now_ns()
    session.subs.bars[req_id] = BarSub(contract, next_start_ns=now // BUCKET_NS * BUCKET_NS)


def cancel_realtime_bars(session: Session, fields: list[str]) -> None:
    session.subs.bars.pop(req_id_at(fields, 2, "cancelRealTimeBars"), None)


def bar_seconds(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([a-zA-Z]+)", text.strip())
    unit = _BAR_UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None:
        raise ValueError(f"bar size {text!r} is not valid (e.g. '5 secs', '1 min', '1 hour', '1 day')")
    return int(m.group(1)) * unit


def duration_seconds(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([SDWMY])", text.strip().upper())
    if m is None:
        raise ValueError(f"duration {text!r} is not valid (e.g. '1800 S', '2 D', '1 W', '1 M', '1 Y')")
    return int(m.group(1)) * _DURATION_UNITS[m.group(2)]


def parse_end(text: str, now_ns: int) -> int:
    """IB's endDateTime: '' (now), 'YYYYMMDD HH:MM:SS[ zone]' or 'YYYYMMDD-HH:MM:SS' (UTC); never past now."""
    if not text:
        return now_ns
    try:
        if "-" in text[:9]:
            t = datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        else:
            day, clock, *zone = text.split(" ", 2)
            t = datetime.strptime(day + clock, "%Y%m%d%H:%M:%S").replace(
                tzinfo=ZoneInfo(zone[0]) if zone else NEW_YORK
            )
    except (ValueError, KeyError) as exc:
        raise ValueError(f"end date/time {text!r} is not valid ({exc})") from None
    return min(now_ns, int(t.timestamp()) * 10**9)


def bar_date(start_ns: int, daily: bool, format_date: int) -> str:
    t = datetime.fromtimestamp(start_ns / 1e9, tz=UTC)
    if daily:
        return t.strftime("%Y%m%d")
    if format_date == 2:
        return str(start_ns // 10**9)
    return t.astimezone(NEW_YORK).strftime("%Y%m%d %H:%M:%S US/Eastern")


def bar_row(bar: SimBar, daily: bool, format_date: int) -> BarRow:
    return (
        bar_date(bar.start_ns, daily, format_date),
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume,
        bar.wap,
        bar.count,
    )


def historical_data(session: Session, fields: list[str]) -> None:
    req = parse_historical(fields)
    server = session.server
    contract = server.resolve(req.contract)
    if contract is None:
        session.error(req.req_id, 200)
        return
    if server.faults.hmds_farm_down:
        session.error(req.req_id, 162, "Historical Market Data Service error message:HMDS connection broken")
        return
    now = server.clock.now_ns()
    try:
        size, duration = bar_seconds(req.bar_size), duration_seconds(req.duration)
        if req.keep_up_to_date and req.end:
            raise ValueError("keepUpToDate needs an empty end date/time")
        end = parse_end(req.end, now)
        if duration // size > MAX_HISTORY_BARS:
            raise ValueError("Time length exceed max.")
        bars = server.market.history(contract.symbol, end, duration, size, req.what_to_show, req.use_rth)
    except ValueError as exc:
        session.error(req.req_id, 162, f"Historical Market Data Service error message:{exc}")
        return
    daily = size >= 86400
    rows = [bar_row(b, daily, req.format_date) for b in bars]
    start_text = bar_date(end - duration * 10**9, False, 1)
    session.send(wire.historical_data(req.req_id, start_text, bar_date(end, False, 1), rows))
    if req.keep_up_to_date and not daily:
        session.subs.history[req.req_id] = LiveHistorySub(
            contract, size, req.what_to_show, req.format_date, last_grid_ns=now // BUCKET_NS * BUCKET_NS
        )


def cancel_historical_data(session: Session, fields: list[str]) -> None:
    session.subs.history.pop(req_id_at(fields, 2, "cancelHistoricalData"), None)


def head_timestamp(session: Session, fields: list[str]) -> None:
    req_id, query, format_date = parse_head_timestamp(fields)
    contract = session.server.resolve(query)
    if contract is None:
        session.error(req_id, 200)
        return
    first = datetime(2000, 1, 3, 14, 30, tzinfo=UTC)  # the simulated walk has data from any date on
    text = str(int(first.timestamp())) if format_date == 2 else first.strftime("%Y%m%d-%H:%M:%S")
    session.send(wire.head_timestamp(req_id, text))


def current_time(session: Session, fields: list[str]) -> None:
    session.send(wire.current_time(session.server.clock.now_ns() // 10**9))


HANDLERS: dict[int, Callable[[Session, list[str]], None]] = {
    msg_id: wire.guarded(handler)
    for msg_id, handler in {
        1: market_data,
        2: cancel_market_data,
        9: contract_details,
        20: historical_data,
        25: cancel_historical_data,
        49: current_time,
        50: realtime_bars,
        51: cancel_realtime_bars,
        59: market_data_type,
        87: head_timestamp,
    }.items()
}
