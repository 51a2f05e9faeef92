"""Tick-by-tick data (reqTickByTickData: Last, AllLast, BidAsk, MidPoint) and market depth (reqMktDepth), read off
the same quotes and price path as reqMktData, so every stream a client holds agrees with the others.

Request handlers answer on their session; `stream_ticks` is called by the market loop once a pass and only sends
what changed since the last pass. Nothing here blocks, and a bad request costs an error, never the session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from procs.gateway_sim import wire
from procs.gateway_sim.market import _mix
from procs.gateway_sim.pricepath import symbol_key
from procs.gateway_sim.subscriptions import DepthSub, TickByTickSub
from procs.gateway_sim.wire_requests import as_int, contract_at, need, req_id_at
from procs.gateway_sim.wire_ticks import (
    ASK_SIDE,
    BID_SIDE,
    DEPTH_INSERT,
    DEPTH_UPDATE,
    TICK_BY_TICK_TYPES,
    market_depth,
    market_depth_l2,
    tick_by_tick_bid_ask,
    tick_by_tick_last,
    tick_by_tick_midpoint,
)

if TYPE_CHECKING:
    from procs.gateway_sim.session import Session

MAX_DEPTH_ROWS = 5  # "a few levels around the touch"
DEPTH_MAKERS = ("NASDAQ", "ARCA", "BATS", "IEX", "EDGX")  # who quotes each SMART depth row


def depth_book(session: Session, symbol: str, now_ns: int, rows: int) -> list[tuple[int, int, float, int]]:
    """`rows` levels a side: the touch is the quote's bid and ask with their sizes, each deeper level a tick
    further away with a size that varies per quarter-second (deterministic, like the quote sizes)."""
    market = session.server.market
    bid, ask, _, bid_size, ask_size, _ = market.quote(symbol, now_ns)
    p = market.walk_params(symbol)
    noise = _mix(symbol_key(symbol) ^ (now_ns // 250_000_000) ^ 0xD5)
    book: list[tuple[int, int, float, int]] = []
    for i in range(rows):
        deeper = 100 * (2 + (noise >> (8 * i)) % 40)
        bid_i = round(bid - i * p.tick, p.tick_digits)
        if bid_i >= p.tick:
            book.append((BID_SIDE, i, bid_i, bid_size if i == 0 else deeper))
        book.append(
            (ASK_SIDE, i, round(ask + i * p.tick, p.tick_digits), ask_size if i == 0 else deeper + 100)
        )
    return book


def _depth_rows(req_id: int, sub: DepthSub, rows: list[tuple[int, int, float, int]], operation: int) -> bytes:
    out = []
    for side, position, price, size in rows:
        if sub.smart:
            maker = DEPTH_MAKERS[position % len(DEPTH_MAKERS)]
            out.append(market_depth_l2(req_id, position, maker, operation, side, price, size, True))
        else:
            out.append(market_depth(req_id, position, operation, side, price, size))
    return b"".join(out)


def _tick(req_id: int, sub: TickByTickSub, session: Session, now_ns: int, force: bool) -> bytes:
    """The tick of this subscription's kind at `now_ns`, or b"" when nothing changed since the last one sent."""
    bid, ask, last, bid_size, ask_size, last_size = session.server.market.quote(sub.contract.symbol, now_ns)
    epoch = now_ns // 10**9
    if sub.kind in (1, 2):
        if not last_size:  # nothing trades (outside the sessions the walk stands still)
            return b""
        state: tuple[object, ...] = (last, now_ns // 250_000_000)  # a print per quote period while trading
    elif sub.kind == 3:
        state = (bid, ask, bid_size, ask_size)
    else:
        p = session.server.market.walk_params(sub.contract.symbol)
        state = (round((bid + ask) / 2, p.tick_digits + 1),)
    if state == sub.last_sent and not force:
        return b""
    sub.last_sent = state
    if sub.kind in (1, 2):
        exchange = sub.contract.primary_exchange if sub.kind == 1 else DEPTH_MAKERS[epoch % len(DEPTH_MAKERS)]
        return tick_by_tick_last(req_id, sub.kind, epoch, last, last_size, exchange)
    if sub.kind == 3:
        return tick_by_tick_bid_ask(req_id, epoch, bid, ask, bid_size, ask_size)
    return tick_by_tick_midpoint(req_id, epoch, float(state[0]))  # type: ignore[arg-type]


def tick_by_tick(session: Session, fields: list[str]) -> None:
    need(fields, 15, "reqTickByTickData")
    req_id = as_int(fields[1], "reqTickByTickData reqId")
    contract = session.server.resolve(contract_at(fields, 2, "reqTickByTickData"))
    if contract is None:
        session.error(req_id, 200)
        return
    kind = TICK_BY_TICK_TYPES.get(fields[14].strip().upper())
    if kind is None:
        session.error(
            req_id,
            10190,
            f"Invalid tick-by-tick type {fields[14][:20]!r}: use Last, AllLast, BidAsk or MidPoint",
        )
        return
    sub = TickByTickSub(contract, kind)
    session.subs.tick_by_tick[req_id] = sub
    first = _tick(req_id, sub, session, session.server.clock.now_ns(), force=True)
    if first:
        session.send(first)


def cancel_tick_by_tick(session: Session, fields: list[str]) -> None:
    session.subs.tick_by_tick.pop(req_id_at(fields, 1, "cancelTickByTickData"), None)


def market_depth_request(session: Session, fields: list[str]) -> None:
    need(fields, 17, "reqMktDepth")
    req_id = as_int(fields[2], "reqMktDepth reqId")
    contract = session.server.resolve(contract_at(fields, 3, "reqMktDepth"))
    if contract is None:
        session.error(req_id, 200)
        return
    rows = max(1, min(MAX_DEPTH_ROWS, as_int(fields[15], "reqMktDepth numRows", MAX_DEPTH_ROWS)))
    sub = DepthSub(contract, rows, smart=fields[16] == "1")
    sub.book = depth_book(session, contract.symbol, session.server.clock.now_ns(), rows)
    session.subs.depth[req_id] = sub
    session.send(_depth_rows(req_id, sub, sub.book, DEPTH_INSERT), 2 * rows)


def cancel_market_depth(session: Session, fields: list[str]) -> None:
    session.subs.depth.pop(req_id_at(fields, 2, "cancelMktDepth"), None)


def stream_ticks(session: Session, now_ns: int, out: list[bytes]) -> None:
    """What changed since the last pass: one tick per tick-by-tick line, the changed rows of each book."""
    for req_id, sub in session.subs.tick_by_tick.items():
        tick = _tick(req_id, sub, session, now_ns, force=False)
        if tick:
            out.append(tick)
    for req_id, depth in session.subs.depth.items():
        book = depth_book(session, depth.contract.symbol, now_ns, depth.rows)
        changed = [row for row in book if row not in depth.book]
        old_keys = {(side, pos) for side, pos, _, _ in depth.book}
        inserted = [row for row in changed if (row[0], row[1]) not in old_keys]
        updated = [row for row in changed if (row[0], row[1]) in old_keys]
        depth.book = book
        if updated:
            out.append(_depth_rows(req_id, depth, updated, DEPTH_UPDATE))
        if inserted:
            out.append(_depth_rows(req_id, depth, inserted, DEPTH_INSERT))


HANDLERS: dict[int, Callable[[Session, list[str]], None]] = {
    msg_id: wire.guarded(handler)
    for msg_id, handler in {
        10: market_depth_request,
        11: cancel_market_depth,
        97: tick_by_tick,
        98: cancel_tick_by_tick,
    }.items()
}
