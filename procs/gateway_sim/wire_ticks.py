"""Encoders of tick-by-tick data (id 99) and market depth (ids 12 and 13), as IB's decoder reads them.

Pure: plain values in, bytes out. Their layouts are the same at every server version the simulator speaks
(157..178): tick-by-tick has had numberOfTicks/ignoreSize since 140 and depth its isSmartDepth flag since 146.
"""

from __future__ import annotations

from decimal import Decimal

from procs.gateway_sim.wire import frame

# tick-by-tick types, as reqTickByTickData names them and message 99 numbers them
TICK_BY_TICK_TYPES = {"LAST": 1, "ALLLAST": 2, "BIDASK": 3, "MIDPOINT": 4}
DEPTH_INSERT, DEPTH_UPDATE, DEPTH_DELETE = 0, 1, 2
ASK_SIDE, BID_SIDE = 0, 1  # IB's side numbers in updateMktDepth


def tick_by_tick_last(
    req_id: int, kind: int, epoch: int, price: float, size: int | Decimal, exchange: str, conditions: str = ""
) -> bytes:
    """A trade (kind 1 Last or 2 AllLast); the attribute mask (pastLimit, unreported) stays 0."""
    return frame((99, req_id, kind, epoch, price, size, 0, exchange, conditions))


def tick_by_tick_bid_ask(
    req_id: int, epoch: int, bid: float, ask: float, bid_size: int | Decimal, ask_size: int | Decimal
) -> bytes:
    return frame((99, req_id, 3, epoch, bid, ask, bid_size, ask_size, 0))


def tick_by_tick_midpoint(req_id: int, epoch: int, mid: float) -> bytes:
    return frame((99, req_id, 4, epoch, mid))


def market_depth(req_id: int, position: int, operation: int, side: int, price: float, size: int) -> bytes:
    """updateMktDepth (one exchange's book: what a non-smart depth request gets)."""
    return frame((12, 1, req_id, position, operation, side, price, size))


def market_depth_l2(
    req_id: int, position: int, maker: str, operation: int, side: int, price: float, size: int, smart: bool
) -> bytes:
    """updateMktDepthL2: SMART depth aggregates exchanges, each row naming the one that quotes it."""
    return frame((13, 1, req_id, position, maker, operation, side, price, size, smart))
