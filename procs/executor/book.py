"""The executor's book: what it knows (quotes, contracts, targets, the gateway, the halt) over the ledger, and
the views the decisions need: positions, working shares, marks, today's P&L, the risk context.

Part of the core (engine.Executor owns one); adapters read it through view.ExecutorView, never directly.
Reading only: nothing here decides to trade or changes an order (engine.py does); it opens a day's record in
the ledger the first time that day is asked for, and nothing else is written.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal

from procs.executor import pnl
from procs.executor.actions import Publish
from procs.executor.breaker import CircuitBreaker
from procs.executor.hours import MarketClock, session_at, trading_day
from procs.executor.ledger import DayRecord, HaltState, Ledger
from procs.executor.risk import MAX_QUOTE_AGE_SECONDS, RiskContext, RiskLimits
from procs.executor.sizing import QuoteSnapshot
from shared.config import Settings
from shared.log import log_every
from shared.messages import GatewayStatus, Position, RiskState, TargetPosition


class Book:
    """Holds the book in memory (quotes, contracts, targets) over the ledger (orders, fills, positions, halt)."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        clock: MarketClock,
        wall: Callable[[], int] = time.time_ns,
        mono: Callable[[], int] | None = None,
    ) -> None:
        self.settings = settings
        self.limits = RiskLimits.from_settings(settings)
        self._ledger = ledger
        self.clock = clock
        self.wall = wall
        # ages (quote age, order expiry, the order-rate window, cancel resends) on a clock that a wall-clock step
        # (NTP, a VM resumed) cannot move; a test passes one settable clock for both
        self.mono = mono or wall
        self._born: dict[str, int] = {}  # client order id -> when it was created, on the monotonic clock
        self.quotes: dict[str, QuoteSnapshot] = {}
        self.ticks: dict[str, Decimal] = {}  # the contract's minimum tick, from the bridge
        self.targets: dict[str, TargetPosition] = {}
        self.gateway: GatewayStatus | None = None
        self.broker_positions: dict[str, Decimal] = {}
        self.breaker = CircuitBreaker(settings.circuit_breaker_max_errors)
        self.recent_orders: deque[int] = deque(
            sorted(self.since_mono(c) for c in ledger.created_since(wall() - 60 * 10**9))
        )
        self.cancel_sent: dict[str, int] = {}
        self.counters: dict[str, float] = {}
        self.last_rejection = ""
        self.halt: HaltState = ledger.halt_state()
        self._day: DayRecord | None = None
        self.synced = False
        self.blocked = ledger.mismatches()  # symbols whose ledger disagrees with the broker: no orders at all
        self.flattening = ledger.flattening()  # the operator's flatten, until resume
        self.flat_announced = False
        self.other_holdings: dict[int, Position] = {}  # by conId: holdings the stack does not trade

    def note_other_holdings(self, positions: list[Position]) -> list[Position]:
        """Remember the holdings the stack does not trade; the ones never seen before are returned (reported once)."""
        new = [p for p in positions if p.con_id not in self.other_holdings]
        self.other_holdings = {p.con_id: p for p in positions}
        for p in new:
            log_every(f"holding.{p.con_id}", 86_400, "INFO",
                      f"holding not traded by the stack (shown, never reconciled): {p.sec_type} {p.local_symbol or p.symbol} "
                      f"{p.quantity}")  # fmt: skip
        return new

    def since_mono(self, wall_ns: int) -> int:
        """A wall-clock instant of the past (a ledger's created_ns) on the monotonic clock, as of now."""
        return self.mono() - (self.wall() - wall_ns)

    def age_s(self, client_order_id: str, created_ns: int) -> float:
        """How long ago an order was created, in seconds, measured on the monotonic clock."""
        born = self._born.get(client_order_id)
        if born is None:
            born = self._born[client_order_id] = self.since_mono(created_ns)
        return (self.mono() - born) / 1e9

    def count(self, name: str, n: float = 1) -> None:
        """Add to one of the counters the heartbeat and `bin/trader status` show."""
        self.counters[name] = self.counters.get(name, 0) + n

    def position(self, symbol: str) -> Decimal:
        """The ledger's position in `symbol` (0 when none)."""
        pos = self._ledger.positions.get(symbol)
        return pos.quantity if pos is not None else Decimal(0)

    def working_shares(self, symbol: str) -> Decimal:
        """Signed shares still to fill in the symbol's working orders (stops excluded: they live apart)."""
        return sum(
            (o.signed_pending() for o in self._ledger.working.values() if o.symbol == symbol), Decimal(0)
        )

    def marks(self) -> dict[str, Decimal]:
        return {s: q.reference for s, q in self.quotes.items() if q.reference > 0}

    def market_now(self) -> int | None:
        return self.clock.now_ns(self.wall())

    def trading_day(self) -> str:
        return trading_day(self.market_now() or self.wall())

    def day_record(self) -> DayRecord:
        day = self.trading_day()
        if self.market_now() is None:  # the simulator's date is unknown yet: record nothing on a guessed day
            return self._ledger.day(day) or self._placeholder_day(day)
        if self._day is None or self._day.trading_day != day:
            self._day = self._ledger.open_day(day, self.marks())
        return self._day

    def _placeholder_day(self, day: str) -> DayRecord:
        """A day starting now from the current cash and positions (each valued at its own mark): P&L 0."""
        start: dict[str, tuple[Decimal, Decimal | None]] = {
            s: (p.quantity, None) for s, p in self._ledger.positions.items() if p.quantity != 0
        }
        return DayRecord(day, self._ledger.cash(), Decimal(0), Decimal(0), start)

    def forget_day(self) -> None:
        """The day's record changed in the ledger (a fill, a commission, an adjustment): read it again."""
        self._day = None

    def holdings(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {s: (p.quantity, p.avg_cost) for s, p in self._ledger.positions.items()}

    def daily_pnl(self) -> Decimal:
        day = self.day_record()
        return pnl.daily_pnl(self._ledger.cash(), day.start_cash, self.holdings(), day.start, self.marks())

    def flatten_position(self, symbol: str) -> Decimal:
        """What is left to close: the smaller of the ledger's and the broker's position, 0 if they disagree in
        sign (closing on a wrong number could cross zero at the broker)."""
        ours = self.position(symbol)
        theirs = self.broker_positions.get(symbol, ours)
        if ours == 0 or theirs == 0 or (ours > 0) != (theirs > 0):
            return Decimal(0)
        return min(ours, theirs, key=abs)

    @property
    def farm_down(self) -> bool:
        """The bridge is DEGRADED but allows orders: a market-data farm is down and only orders that reduce a
        position go (the bridge checks that again against the Gateway's position)."""
        g = self.gateway
        return g is not None and g.state == "DEGRADED" and g.orders_allowed

    @property
    def tradable(self) -> bool:
        """The bridge takes orders: every order (READY), or reduce-only ones (farm_down)."""
        g = self.gateway
        return g is not None and g.orders_allowed and g.state in ("READY", "DEGRADED")

    def order_gate(self) -> str:
        """What the gateway lets through, in the operator's words (bin/trader status)."""
        g = self.gateway
        if g is None:
            return "none: the bridge's state is not known yet"
        if self.farm_down:
            return f"reduce-only and flatten ({g.reason}; priced: FARM_DOWN_PRICING={self.settings.farm_down_pricing})"
        if g.state == "READY" and g.orders_allowed:
            return "all"
        return f"none: gateway {g.state}" + (f" ({g.reason})" if g.reason else "")

    def risk_context(self, symbol: str, *, operator: bool = False, excluding: str = "") -> RiskContext:
        now = self.mono()
        while self.recent_orders and self.recent_orders[0] < now - 60 * 10**9:
            self.recent_orders.popleft()
        working: dict[str, Decimal] = {}
        for o in self._ledger.working.values():
            if o.client_order_id == excluding:
                continue
            working[o.symbol] = working.get(o.symbol, Decimal(0)) + o.signed_pending()
        market_now = self.market_now()
        g = self.gateway
        return RiskContext(
            positions={s: p.quantity for s, p in self._ledger.positions.items()},
            working=working,
            marks=self.marks(),
            quote=self.quotes.get(symbol),
            now_ns=now,
            session=None if market_now is None else session_at(market_now),
            gateway_state=g.state if g else "",
            gateway_ready=g is not None and g.state == "READY" and g.orders_allowed,
            gateway_reduce_only=self.farm_down,
            gateway_reason=g.reason if g else "",
            quote_max_age=self.settings.farm_down_quote_max_age if self.farm_down else MAX_QUOTE_AGE_SECONDS,
            halted=self.halt.halted and not operator,  # flatten is the operator's explicit, reduce-only order
            halt_reason=self.halt.reason,
            circuit_open=not self.breaker.allows_order(),
            daily_pnl=self.daily_pnl(),
            orders_last_minute=len(self.recent_orders),
        )

    def publish_risk(self) -> Publish:
        state = RiskState(
            halted=self.halt.halted,
            halt_reason=self.halt.reason,
            circuit_open=self.breaker.is_open,
            daily_pnl=self.daily_pnl(),
            gross_exposure=pnl.gross_exposure(self.holdings(), self.marks()),
        )
        return Publish("risk", state)
