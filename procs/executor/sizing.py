"""Sizing: a strategy's target weight becomes whole shares, and an order's limit price in exact ticks (pure).

Prices are Decimal and always a whole number of the contract's minimum tick; floats from quotes are converted
through their shortest text form, never through binary arithmetic. Nothing here decides whether an order is
allowed: that is risk.py's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Literal

BPS = Decimal(10_000)


def to_decimal(value: float) -> Decimal:
    """A float from the wire as the Decimal a human would read (187.25, not 187.249999...)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    return Decimal(repr(value))


@dataclass(frozen=True, slots=True)
class QuoteSnapshot:
    """The last quote of one symbol as the executor uses it; zero means unknown."""

    bid: Decimal
    ask: Decimal
    last: Decimal
    received_ns: int = 0
    # the price a collar is measured against: the mid when both sides are there, else the last trade (worked out
    # once: marks, P&L and every risk check read it, many times per quote)
    reference: Decimal = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if self.bid > 0 and self.ask > 0 and self.ask >= self.bid:
            ref = (self.bid + self.ask) / 2
        else:
            ref = self.last if self.last > 0 else max(self.bid, self.ask)
        object.__setattr__(self, "reference", ref)

    def touch(self, side: Literal["BUY", "SELL"]) -> Decimal:
        """The price a marketable order meets: the ask to buy, the bid to sell (the last trade when missing)."""
        price = self.ask if side == "BUY" else self.bid
        return price if price > 0 else self.reference


def target_shares(weight: float, position_notional: Decimal, price: Decimal) -> Decimal:
    """weight x notional / price in whole shares, rounded toward zero so a target never exceeds its notional."""
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    raw = to_decimal(weight) * position_notional / price
    return raw.to_integral_value(rounding=ROUND_DOWN) + 0  # + 0 turns -0 into 0


def round_to_tick(price: Decimal, tick: Decimal, direction: Literal["down", "up"]) -> Decimal:
    """The nearest whole tick at or below (down) or at or above (up) `price`."""
    if tick <= 0:
        raise ValueError(f"minimum tick must be positive, got {tick}")
    ticks = (price / tick).to_integral_value(rounding=ROUND_FLOOR if direction == "down" else ROUND_CEILING)
    return (ticks * tick).quantize(tick)


def marketable_limit(
    side: Literal["BUY", "SELL"], quote: QuoteSnapshot, collar_bps: Decimal, tick: Decimal
) -> Decimal:
    """A limit that crosses the touch by half the collar, in whole ticks, so it fills yet stays inside the collar.

    A buy rounds down and a sell rounds up (toward the reference), but never to the wrong side of the touch.
    """
    touch = quote.touch(side)
    offset = collar_bps / 2 / BPS
    if side == "BUY":
        price = round_to_tick(touch * (1 + offset), tick, "down")
        return max(price, round_to_tick(touch, tick, "up"))
    price = round_to_tick(touch * (1 - offset), tick, "up")
    return min(price, round_to_tick(touch, tick, "down"))


def order_delta(target: Decimal, position: Decimal, working: Decimal) -> Decimal:
    """Shares still to order: target - (position + working orders), signed (+ buy, - sell)."""
    return target - (position + working)


def fractional_step(delta: Decimal, exposure: Decimal) -> Decimal:
    """The shares to order for `delta` under IB's fractional rules: a fraction only closes the fraction of a
    fractional position (`exposure`: position + working orders). A reduction keeps its fraction (it lands on a whole
    target, or on zero when it would cross it: the rest follows as a whole number); new risk is whole shares."""
    q = abs(delta)
    if q == q.to_integral_value():
        return q
    if exposure != 0 and (delta > 0) != (exposure > 0):
        return min(q, abs(exposure))
    return q.to_integral_value(rounding=ROUND_DOWN)


REBALANCE_BAND = Decimal("0.05")  # a same-side position within 5% of its target is left alone


def worth_trading(target: Decimal, exposure: Decimal) -> bool:
    """Is the gap between the target and position + working orders worth an order?

    The same target re-sized at a moving price would otherwise send a stream of one-share top-ups, each paying
    a full commission. Going flat, changing side or a gap beyond the band always trades.
    """
    gap = abs(target - exposure)
    if gap == 0:
        return False
    if target == 0 or exposure == 0 or (target > 0) != (exposure > 0):
        return True
    return gap > abs(target) * REBALANCE_BAND


def collar_distance_bps(price: Decimal, reference: Decimal) -> Decimal:
    """How far a price is from the reference, in basis points (always >= 0)."""
    return abs(price - reference) / reference * BPS
