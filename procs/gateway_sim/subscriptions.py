"""What one session has subscribed to: quotes, bars, live history, tick-by-tick and depth, by request id.

Plain records shared by the session (which owns them) and the handlers and streams (which fill and read them); it
must never import the session, the server or a handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from procs.gateway_sim.contracts import SimContract


@dataclass
class MarketSub:
    contract: SimContract


@dataclass
class BarSub:
    contract: SimContract
    next_start_ns: int


@dataclass
class LiveHistorySub:
    contract: SimContract
    bar_seconds: int
    what: str
    format_date: int
    last_grid_ns: int


@dataclass
class Subscriptions:
    market: dict[int, MarketSub] = field(default_factory=dict)
    bars: dict[int, BarSub] = field(default_factory=dict)
    history: dict[int, LiveHistorySub] = field(default_factory=dict)
    tick_by_tick: dict[int, TickByTickSub] = field(default_factory=dict)
    depth: dict[int, DepthSub] = field(default_factory=dict)
    positions: bool = False
    account: bool = False
    account_multi: set[int] = field(default_factory=set)

    def clear_market_data(self) -> int:
        n = len(self.market) + len(self.bars) + len(self.history) + len(self.tick_by_tick) + len(self.depth)
        self.market.clear()
        self.bars.clear()
        self.history.clear()
        self.tick_by_tick.clear()
        self.depth.clear()
        return n


@dataclass
class TickByTickSub:
    contract: SimContract
    kind: int  # 1 Last, 2 AllLast, 3 BidAsk, 4 MidPoint
    last_sent: tuple[object, ...] = ()


@dataclass
class DepthSub:
    contract: SimContract
    rows: int
    smart: bool
    book: list[tuple[int, int, float, int]] = field(default_factory=list)  # (side, position, price, size)
