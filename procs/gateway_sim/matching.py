"""When a working order fills, and at what price: the order-type rules of the simulated broker (MKT, LMT, STP,
STP LMT, TRAIL, IOC, an OCA group) applied to one price update. MKT fills at once (at the ask/bid when given, else
the last price), in chunks of `fill_chunk` shares; LMT fills when the price touches its limit, one chunk per price
update, so large orders show partial fills; STP turns into MKT (STP LMT into LMT) once the price touches the stop.
IOC cancels what it could not fill on arrival. DAY orders do not expire.

Pure: an order and a price in, the order's own changes and events out. It must never book a fill into the account,
hand out an id or read a clock: a fill goes through the `fill` callback the broker hands in, which books it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from procs.gateway_sim.account import ZERO, ratio
from procs.gateway_sim.orders import OrderChanged, SimEvent, SimOrder

# (order, quantity, price) -> the events of booking that fill; the broker's, which knows the books and the ids
Fill = Callable[[SimOrder, Decimal, Decimal], list[SimEvent]]

STOP_TYPES = ("STP", "STP LMT", "TRAIL")
MARKET_TYPES = ("MKT", "STP", "TRAIL")  # a triggered STP or TRAIL works as MKT


def to_price(x: float | Decimal, tick: Decimal) -> Decimal:
    """A price as an exact Decimal on the tick grid (floats via their shortest repr, so 190.01 stays 190.01)."""
    d = x if isinstance(x, Decimal) else Decimal(repr(float(x)))
    return ((d / tick).to_integral_value() * tick).quantize(tick)


@dataclass(frozen=True, slots=True)
class Commissions:
    """IB's tiered-like schedule: per share, at least `minimum` an order, at most `max_pct` of its value."""

    per_share: Decimal
    minimum: Decimal
    max_pct: Decimal

    def __call__(self, order: SimOrder) -> Decimal:
        """The order's commission so far."""
        return min(max(self.per_share * order.filled, self.minimum), self.max_pct * order.filled_value)


def fill_order(order: SimOrder, qty: Decimal, price: Decimal, commissions: Commissions) -> Decimal:
    """The order's own side of a fill: its filled quantity, average and last price, commission so far and, once
    nothing remains, Filled. Returns the commission of this fill alone."""
    order.filled += qty
    order.filled_value += qty * price
    order.avg_fill_price = ratio(order.filled_value, order.filled)
    order.last_fill_price = price
    total = commissions(order)
    commission, order.commission = total - order.commission, total
    if order.remaining == 0:
        order.status = "Filled"
    return commission


def snapshot(order: SimOrder) -> SimOrder:
    """A copy for an event or a query: the broker's own order keeps changing after it is handed out."""
    return dataclasses.replace(order)


def match(
    order: SimOrder,
    price: float,
    bid: float | None,
    ask: float | None,
    tick: Decimal,
    fill_chunk: Decimal,
    arriving: bool,
    fill: Fill,
) -> list[SimEvent]:
    """Match a working order against the price `price` (and the quote, when given): a stop triggers when the last
    price reaches it; a market order fills all it can at the touch, a limit one chunk when reached; an IOC
    cancels on arrival what it could not fill."""
    buying = order.action == "BUY"
    last = to_price(price, tick)
    touch = to_price(ask if buying and ask else bid if not buying and bid else price, tick)
    events: list[SimEvent] = []
    if order.order_type == "TRAIL" and not order.triggered:
        trail(order, last, tick)
    if order.order_type in STOP_TYPES and not order.triggered:
        stop = order.aux_price or ZERO
        if not (last >= stop if buying else last <= stop):
            return events
        order.triggered = True
        events.append(OrderChanged(snapshot(order)))
    if order.order_type in MARKET_TYPES:
        while order.is_working:
            events += fill(order, min(order.remaining, fill_chunk), touch)
    else:
        fill_price = _limit_fill_price(order, last, touch, arriving)
        if fill_price is not None:
            events += fill(order, min(order.remaining, fill_chunk), fill_price)
    if arriving and order.tif == "IOC" and order.is_working:
        order.status = "Cancelled"
        events.append(OrderChanged(snapshot(order)))
    return events


def _limit_fill_price(order: SimOrder, last: Decimal, touch: Decimal, arriving: bool) -> Decimal | None:
    """The price a limit order fills at now, or None when the price has not reached it. Arriving, it must cross
    the spread (and fills at the better of its limit and the touch); resting, a trade at its limit is enough."""
    limit = order.lmt_price or ZERO
    if order.action == "BUY":
        reached = touch <= limit or (not arriving and last <= limit)
        better = min(limit, touch)
    else:
        reached = touch >= limit or (not arriving and last >= limit)
        better = max(limit, touch)
    if not reached:
        return None
    return better if arriving else limit


def trail(order: SimOrder, last: Decimal, tick: Decimal) -> None:
    """Move a trailing stop's trigger with the price, only ever in the position's favour: a SELL's trigger up
    to pct below the best price since placement, a BUY's down to pct above it."""
    pct = (order.trailing_pct or ZERO) / 100
    if order.action == "SELL":
        trigger = (last * (1 - pct) / tick).to_integral_value(rounding="ROUND_FLOOR") * tick
        if order.aux_price is None or trigger > order.aux_price:
            order.aux_price = trigger
    else:
        trigger = (last * (1 + pct) / tick).to_integral_value(rounding="ROUND_CEILING") * tick
        if order.aux_price is None or trigger < order.aux_price:
            order.aux_price = trigger


def reduce_oca(orders: Iterable[SimOrder], filled: SimOrder, qty: Decimal) -> list[SimEvent]:
    """ocaType 3: a fill reduces every other working order of its OCA group by as much (cancelled at 0)."""
    events: list[SimEvent] = []
    for other in orders:
        if other is filled or not other.is_working or other.oca_group != filled.oca_group:
            continue
        other.total_qty = max(other.filled, other.total_qty - qty)
        if other.remaining <= 0:
            other.status = "Cancelled"
        events.append(OrderChanged(snapshot(other)))
    return events
