"""The simulator's clockwork: quotes for every subscribed symbol, 5-second real-time bars, keep-up-to-date
history bars, and the broker's look at each new price (fills of working orders).

One asyncio task, waking every `tick_interval` real seconds; each wake sends at most one batch per session,
and the account values that changed, when their three (simulated) minutes are up.
It must never spin: every pass sleeps, and a pass that fails is logged (rate-limited) and the loop goes on.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import TYPE_CHECKING

from loguru import logger

from procs.gateway_sim import handlers_market, handlers_orders, wire
from procs.gateway_sim.handlers_ticks import stream_ticks
from procs.gateway_sim.pricepath import BUCKET_NS, BUCKETS_PER_DAY
from shared.log import log_every

if TYPE_CHECKING:
    from procs.gateway_sim.market import Market, SimBar
    from procs.gateway_sim.session import Session, SimServerPort
    from procs.gateway_sim.subscriptions import LiveHistorySub

MAX_BARS_PER_PASS = 60  # at a high clock speed a subscriber skips ahead rather than receive a flood


class DayVolumes:
    """Cumulative volume of the (UTC) day per symbol, advanced bucket by bucket instead of re-summed."""

    def __init__(self, market: Market) -> None:
        self._market = market
        self._state: dict[str, tuple[int, int, int]] = {}  # symbol -> (day, buckets counted, volume)

    def at(self, symbol: str, t_ns: int) -> int:
        day, j = divmod((t_ns - self._market.offset_ns) // BUCKET_NS, BUCKETS_PER_DAY)
        upto = j + 1
        volume = self._market.block(symbol, day).volume
        state = self._state.get(symbol)
        if state is None or state[0] != day or upto < state[1]:
            total = int(volume[:upto].sum())
        else:
            total = state[2] + int(volume[state[1] : upto].sum())
        self._state[symbol] = (day, upto, total)
        return total


async def run_market_loop(server: SimServerPort) -> None:
    loop = asyncio.get_running_loop()
    volumes = DayVolumes(server.market)
    interval = server.config.tick_interval
    while True:
        started = loop.time()
        try:
            stream_once(server, volumes)
        except Exception:
            if log_every("market-loop-error", 30.0, "ERROR", "market loop pass failed; continuing"):
                logger.exception("market loop pass failed")
        await asyncio.sleep(max(0.01, interval - (loop.time() - started)))


def stream_once(server: SimServerPort, volumes: DayVolumes) -> None:

    now = server.clock.now_ns()
    faults = server.faults
    if faults.silent == "off" and not faults.streams_paused:
        out: dict[Session, list[bytes]] = defaultdict(list)
        sessions = server.live_sessions()
        _quotes(server, sessions, volumes, now, out)
        for session in sessions:
            _bars(server, session, now, out[session])
            _history_updates(server, session, now, out[session])
            stream_ticks(session, now, out[session])
        for session, chunks in out.items():
            if chunks:
                session.send(b"".join(chunks), len(chunks))
    _working_orders(server, now)
    handlers_orders.push_account(server, now)


def _quotes(
    server: SimServerPort,
    sessions: list[Session],
    volumes: DayVolumes,
    now: int,
    out: dict[Session, list[bytes]],
) -> None:
    by_symbol: dict[str, list[tuple[Session, int]]] = defaultdict(list)
    for session in sessions:
        for req_id, sub in session.subs.market.items():
            by_symbol[sub.contract.symbol].append((session, req_id))
    market = server.market
    for symbol, subscribers in by_symbol.items():
        bid, ask, last, bid_size, ask_size, last_size = market.quote(symbol, now)
        volume = volumes.at(symbol, now)
        for session, req_id in subscribers:
            out[session].append(
                wire.tick_price(req_id, 1, bid, bid_size)
                + wire.tick_price(req_id, 2, ask, ask_size)
                + wire.tick_price(req_id, 4, last, last_size)
                + wire.tick_size(req_id, 8, volume)
            )


def _bars(server: SimServerPort, session: Session, now: int, out: list[bytes]) -> None:
    for req_id, sub in session.subs.bars.items():
        if now - sub.next_start_ns > MAX_BARS_PER_PASS * BUCKET_NS:
            sub.next_start_ns = (now // BUCKET_NS - MAX_BARS_PER_PASS) * BUCKET_NS
        while sub.next_start_ns + BUCKET_NS <= now:
            b = server.market.bar(sub.contract.symbol, sub.next_start_ns, 5)
            out.append(
                wire.realtime_bar(
                    req_id, b.start_ns // 10**9, b.open, b.high, b.low, b.close, b.volume, b.wap, b.count
                )
            )
            sub.next_start_ns += BUCKET_NS


def _history_updates(server: SimServerPort, session: Session, now: int, out: list[bytes]) -> None:

    grid = now // BUCKET_NS * BUCKET_NS
    for req_id, sub in session.subs.history.items():
        if grid <= sub.last_grid_ns:
            continue
        sub.last_grid_ns = grid
        out.append(
            wire.historical_data_update(
                req_id, handlers_market.bar_row(_bar_in_progress(server, sub, grid), False, sub.format_date)
            )
        )


def _bar_in_progress(server: SimServerPort, sub: LiveHistorySub, grid: int) -> SimBar:
    bar_ns = sub.bar_seconds * 10**9
    start = grid // bar_ns * bar_ns
    if start == grid:  # a bar just closed: its final state
        return server.market.bar(sub.contract.symbol, start - bar_ns, sub.bar_seconds)
    return server.market.bar(sub.contract.symbol, start, (grid - start) // 10**9)


def _working_orders(server: SimServerPort, now: int) -> None:

    symbols = {o.symbol for o in server.broker.open_orders()}
    for symbol in symbols:
        bid, ask, last, *_ = server.market.quote(symbol, now)
        events = server.broker.on_price(symbol, last, now, bid, ask)
        if events:
            handlers_orders.deliver(server, events)
