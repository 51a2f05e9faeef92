"""Pre-trade risk: small independent checks, each passing an order or naming the rule it breaks, with the numbers.

Every check is a plain function of (order, context, limits); none has side effects, none reads a clock or a
socket. Orders that only reduce a position skip the exposure caps (they cannot add risk) and, when
ALLOW_REDUCE_ONLY_WHEN_HALTED, the halt; while a market-data farm is down (the bridge DEGRADED with orders allowed)
only they go, priced per FARM_DOWN_PRICING. A check must never let an order through because data is missing,
except a reduce-only market order the operator chose for a farm outage (FARM_DOWN_PRICING=market), which needs no
quote. A fractional quantity passes only when it reduces a fractional position to a whole number or to zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from procs.executor.hours import HoursMode, Session, may_trade
from procs.executor.sizing import QuoteSnapshot, collar_distance_bps
from shared.config import Settings

ABSURD_SHARES = Decimal(1_000_000)  # no single order of this stack is ever this large: a bug or a typo
MAX_QUOTE_AGE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the executor wants to send, before it has an id."""

    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: Decimal
    order_type: Literal["LMT", "MKT"]
    limit_price: Decimal | None
    reduce_only: bool = False

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side == "BUY" else -self.quantity


@dataclass(frozen=True, slots=True)
class RiskLimits:
    symbols: frozenset[str]
    max_position_shares: Decimal
    max_position_notional: Decimal
    max_order_notional: Decimal
    max_gross_exposure: Decimal
    max_open_positions: int
    daily_loss_limit: Decimal
    max_orders_per_minute: int
    price_collar_bps: Decimal
    market_hours: HoursMode
    allow_reduce_only_when_halted: bool

    @classmethod
    def from_settings(cls, s: Settings) -> RiskLimits:
        return cls(
            symbols=frozenset(s.symbols),
            max_position_shares=Decimal(s.max_position_shares),
            max_position_notional=s.max_position_notional,
            max_order_notional=s.max_order_notional,
            max_gross_exposure=s.max_gross_exposure,
            max_open_positions=s.max_open_positions,
            daily_loss_limit=s.daily_loss_limit,
            max_orders_per_minute=s.max_orders_per_minute,
            price_collar_bps=s.price_collar_bps,
            market_hours=s.market_hours,
            allow_reduce_only_when_halted=s.allow_reduce_only_when_halted,
        )


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What the checks see: a snapshot of the book and the world when the order is considered."""

    positions: Mapping[str, Decimal]  # booked shares by symbol
    working: Mapping[str, Decimal]  # signed shares of working orders (and fills in flight) by symbol
    marks: Mapping[str, Decimal]  # a price per symbol, to value positions
    quote: QuoteSnapshot | None  # the last quote of the order's symbol
    now_ns: int  # the monotonic clock, for quote age (QuoteSnapshot.received_ns is on it too)
    session: Session | None  # None: the market's clock is not known yet
    gateway_state: str
    gateway_ready: bool
    # a market-data farm is down: only reduce-only orders go (gateway_reason says which farm)
    gateway_reduce_only: bool = False
    gateway_reason: str = ""
    quote_max_age: float = MAX_QUOTE_AGE_SECONDS  # FARM_DOWN_QUOTE_MAX_AGE while a farm is down
    halted: bool = False
    halt_reason: str = ""
    circuit_open: bool = False
    daily_pnl: Decimal = Decimal(0)
    orders_last_minute: int = 0

    def exposure(self, symbol: str) -> Decimal:
        """Position plus working orders: what the symbol's position will be if everything fills."""
        return self.positions.get(symbol, Decimal(0)) + self.working.get(symbol, Decimal(0))


@dataclass(frozen=True, slots=True)
class Rejection:
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


Check = Callable[[OrderIntent, RiskContext, RiskLimits], Rejection | None]


def is_reduce_only(side: Literal["BUY", "SELL"], quantity: Decimal, exposure: Decimal) -> bool:
    """The order moves the position toward zero without crossing it."""
    signed = quantity if side == "BUY" else -quantity
    return exposure != 0 and (signed > 0) != (exposure > 0) and quantity <= abs(exposure)


def order_price(order: OrderIntent, ctx: RiskContext) -> Decimal:
    """The price an order is valued at: its limit, or the touch for a market order."""
    if order.limit_price is not None:
        return order.limit_price
    return ctx.quote.touch(order.side) if ctx.quote is not None else Decimal(0)


def _money(x: Decimal) -> str:
    return f"{x:,.2f}"


def whole(q: Decimal) -> bool:
    return q == q.to_integral_value()


def check_quantity(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    q = order.quantity
    if not q.is_finite() or q <= 0:
        return Rejection("quantity", f"{q} is not a positive number of shares")
    if not whole(q):
        # IB's fractional rules: a fractional position (a dividend reinvestment, a corporate action) may be reduced
        # by a fractional quantity, to a whole number or to zero; new fractional risk is never ordered
        before = ctx.exposure(order.symbol)
        if not (order.reduce_only and not whole(before) and whole(before + order.signed_quantity)):
            return Rejection(
                "quantity",
                f"{q} is not a whole number of shares (a fraction only closes the fraction of a fractional "
                f"position; {order.symbol} is {before})",
            )
    if q > ABSURD_SHARES:
        return Rejection("quantity", f"{q} shares is absurd (sanity cap {ABSURD_SHARES})")
    return None


def check_symbol(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if order.symbol in lim.symbols:
        return None
    if order.reduce_only and ctx.positions.get(order.symbol, Decimal(0)) != 0:
        return None  # closing a leftover position in a symbol no longer traded is allowed
    return Rejection("symbol", f"{order.symbol!r} is not in SYMBOLS ({','.join(sorted(lim.symbols))})")


def check_quote(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if ctx.gateway_reduce_only and order.reduce_only and order.order_type == "MKT":
        return None  # FARM_DOWN_PRICING=market: the operator closes at market while no quote can come
    q = ctx.quote
    if q is None or q.reference <= 0:
        return Rejection("quote", f"no quote for {order.symbol}: cannot price the order")
    age = (ctx.now_ns - q.received_ns) / 1e9
    if age > ctx.quote_max_age:
        farming = ctx.gateway_reduce_only and order.reduce_only
        farm = " (a market-data farm is down: FARM_DOWN_PRICING=market closes at market)" * farming
        return Rejection(
            "quote", f"last quote of {order.symbol} is {age:.0f}s old (max {ctx.quote_max_age:g}s){farm}"
        )
    return None


def check_halted(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if not ctx.halted:
        return None
    if order.reduce_only and lim.allow_reduce_only_when_halted:
        return None
    return Rejection("halted", f"trading is halted ({ctx.halt_reason}); `bin/trader resume` to resume")


def check_circuit(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if ctx.circuit_open and not order.reduce_only:
        return Rejection(
            "circuit_breaker", "open after repeated rejects or errors; it retries after a cool-down"
        )
    return None


def check_gateway(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if ctx.gateway_ready or (ctx.gateway_reduce_only and order.reduce_only):
        return None
    if ctx.gateway_reduce_only:
        return Rejection("gateway", f"only reduce-only orders go: {ctx.gateway_reason}")
    return Rejection("gateway", f"gateway is {ctx.gateway_state or 'unknown'}, not READY")


def check_market_hours(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if lim.market_hours == "always":
        return None
    if ctx.session is None:
        return Rejection("market_hours", "the market's clock is not known yet (no Gateway time)")
    if may_trade(ctx.session, lim.market_hours):
        return None
    return Rejection("market_hours", f"market is {ctx.session} and MARKET_HOURS={lim.market_hours}")


def check_daily_loss(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if order.reduce_only or ctx.daily_pnl > -lim.daily_loss_limit:
        return None
    return Rejection(
        "daily_loss", f"today's P&L {_money(ctx.daily_pnl)} is at or beyond -{_money(lim.daily_loss_limit)}"
    )


def check_order_rate(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if ctx.orders_last_minute < lim.max_orders_per_minute:
        return None
    return Rejection(
        "order_rate", f"{ctx.orders_last_minute} orders in the last minute (max {lim.max_orders_per_minute})"
    )


def check_collar(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if order.limit_price is None or ctx.quote is None:
        return None  # a market order has no price to collar; check_quote already demands a quote
    ref = ctx.quote.reference
    distance = collar_distance_bps(order.limit_price, ref)
    if distance <= lim.price_collar_bps:
        return None
    return Rejection(
        "price_collar",
        f"limit {order.limit_price} is {distance:.1f} bps from the quote {ref:.4f} (max {lim.price_collar_bps} bps)",
    )


def check_order_notional(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    notional = order.quantity * order_price(order, ctx)
    if order.reduce_only or notional <= lim.max_order_notional:
        return None
    return Rejection("order_notional", f"{_money(notional)} > max {_money(lim.max_order_notional)}")


def check_position_shares(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    after = ctx.exposure(order.symbol) + order.signed_quantity
    if order.reduce_only or abs(after) <= lim.max_position_shares:
        return None
    return Rejection(
        "position_shares", f"{order.symbol} would be {after} shares (max {lim.max_position_shares})"
    )


def check_position_notional(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    after = abs(ctx.exposure(order.symbol) + order.signed_quantity) * order_price(order, ctx)
    if order.reduce_only or after <= lim.max_position_notional:
        return None
    return Rejection(
        "position_notional",
        f"{order.symbol} would be {_money(after)} (max {_money(lim.max_position_notional)})",
    )


def check_gross_exposure(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if order.reduce_only:
        return None
    gross = Decimal(0)
    for symbol in set(ctx.positions) | set(ctx.working) | {order.symbol}:
        shares = ctx.exposure(symbol) + (order.signed_quantity if symbol == order.symbol else 0)
        price = order_price(order, ctx) if symbol == order.symbol else ctx.marks.get(symbol, Decimal(0))
        gross += abs(shares) * price
    if gross <= lim.max_gross_exposure:
        return None
    return Rejection("gross_exposure", f"would be {_money(gross)} (max {_money(lim.max_gross_exposure)})")


def check_open_positions(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    if order.reduce_only or ctx.exposure(order.symbol) != 0:
        return None  # only an order that opens a new symbol adds a position
    held = sum(1 for s in set(ctx.positions) | set(ctx.working) if ctx.exposure(s) != 0)
    if held + 1 <= lim.max_open_positions:
        return None
    return Rejection(
        "open_positions", f"{held} symbols held, a new one would exceed {lim.max_open_positions}"
    )


# Sanity first, then the state of the world, then price, then exposure: the first failure is reported.
CHECKS: tuple[Check, ...] = (
    check_quantity,
    check_symbol,
    check_quote,
    check_halted,
    check_gateway,
    check_circuit,
    check_market_hours,
    check_daily_loss,
    check_order_rate,
    check_collar,
    check_order_notional,
    check_position_shares,
    check_position_notional,
    check_gross_exposure,
    check_open_positions,
)


def first_rejection(order: OrderIntent, ctx: RiskContext, lim: RiskLimits) -> Rejection | None:
    """None when every check passes, else the first rule the order breaks."""
    for check in CHECKS:
        rejection = check(order, ctx, lim)
        if rejection is not None:
            return rejection
    return None
