"""The executor's core: targets become orders, broker reports become ledger entries, the kill switch trips.

Messages in, actions out (send, cancel, publish, reconcile): it never touches a socket, so a test drives it with
plain values and a real ledger. An order is written to the ledger before the action that sends it is returned;
fills are booked once by exec_id; a halt is persisted and never lifted except by an operator.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import msgspec

from procs.executor import pnl
from procs.executor.breaker import CircuitBreaker
from procs.executor.hours import MarketClock, session_at, trading_day
from procs.executor.ledger import DayRecord, FillIn, HaltState, Ledger
from procs.executor.orders import (
    TERMINAL,
    OrderRecord,
    is_expired,
    is_ours,
    new_client_order_id,
    next_state,
)
from procs.executor.risk import (
    OrderIntent,
    Rejection,
    RiskContext,
    RiskLimits,
    first_rejection,
    is_reduce_only,
)
from procs.executor.sizing import (
    QuoteSnapshot,
    marketable_limit,
    order_delta,
    target_shares,
    to_decimal,
    worth_trading,
)
from shared.config import Settings
from shared.log import event, log_every
from shared.messages import (
    Alert,
    Fill,
    GatewayStatus,
    Message,
    OrderAck,
    OrderEvent,
    Position,
    Quote,
    RiskState,
    TargetPosition,
)

CANCEL_RESEND_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Send:
    order: OrderRecord


@dataclass(frozen=True, slots=True)
class Cancel:
    client_order_id: str


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    msg: Message


@dataclass(frozen=True, slots=True)
class Reconcile:
    reason: str


Action = Send | Cancel | Publish | Reconcile


def _price(x: float) -> Decimal:
    """A quote's price, or 0 (unknown) when the wire says NaN, infinity or a non-positive number."""
    return to_decimal(x) if math.isfinite(x) and x > 0 else Decimal(0)


def _as_rejection(e: OrderEvent, order: OrderRecord) -> OrderEvent:
    """IB error 321 (e.g. the read-only API) arrives as a validation *warning* (ib_status ValidationError);
    on an order the Gateway never acknowledged (no permId) it means the order was refused, not that it is live."""
    never_acknowledged = e.perm_id == 0 and order.perm_id == 0 and order.status in ("NEW", "SUBMITTED")
    if e.ib_status == "ValidationError" and e.error_code == 321 and never_acknowledged and order.filled == 0:
        return msgspec.structs.replace(e, status="REJECTED")
    return e


def order_event(o: OrderRecord) -> OrderEvent:
    """The executor's own view of an order, as published on `order.<status>`."""
    return OrderEvent(
        client_order_id=o.client_order_id,
        order_id=o.broker_order_id,
        perm_id=o.perm_id,
        symbol=o.symbol,
        side=o.side,
        quantity=o.quantity,
        order_type=o.order_type,
        limit_price=o.limit_price,
        status=o.status,
        filled=o.filled,
        remaining=max(Decimal(0), o.quantity - o.filled),
        avg_fill_price=o.avg_fill_price,
        reason=o.reason,
        error_code=o.error_code,
    )


class Executor:
    """Holds the book in memory (quotes, contracts, targets) over the ledger (orders, fills, positions, halt)."""

    def __init__(
        self, settings: Settings, ledger: Ledger, clock: MarketClock, wall: Callable[[], int] = time.time_ns
    ) -> None:
        self.settings = settings
        self.limits = RiskLimits.from_settings(settings)
        self.ledger = ledger
        self.clock = clock
        self.wall = wall
        self.quotes: dict[str, QuoteSnapshot] = {}
        self.ticks: dict[str, Decimal] = {}  # the contract's minimum tick, from the bridge
        self.targets: dict[str, TargetPosition] = {}
        self.gateway: GatewayStatus | None = None
        self.broker_positions: dict[str, Decimal] = {}
        self.breaker = CircuitBreaker(settings.circuit_breaker_max_errors)
        self.recent_orders: deque[int] = deque(sorted(ledger.created_since(wall() - 60 * 10**9)))
        self.cancel_sent: dict[str, int] = {}
        self.counters: dict[str, float] = {}
        self.last_rejection = ""
        self.halt: HaltState = ledger.halt_state()
        self._day: DayRecord | None = None
        self.synced = False

    # ------------------------------------------------------------------ inputs

    def on_target(self, t: TargetPosition) -> list[Action]:
        self.count("targets")
        if t.symbol not in self.limits.symbols:
            return self._reject(
                t.symbol, Rejection("symbol", f"target for {t.symbol!r}, which is not in SYMBOLS")
            )
        if not math.isfinite(t.weight) or abs(t.weight) > 1:
            return self._reject(t.symbol, Rejection("weight", f"target weight {t.weight} is outside [-1, 1]"))
        self.targets[t.symbol] = t
        if not self.synced:  # the first reconciliation decides what is working; until then only remember
            self.count("targets_before_sync")
            return []
        return self.evaluate(t.symbol, fresh=True)

    def mark_synced(self) -> list[Action]:
        """The first reconciliation is done: act on the targets that arrived meanwhile."""
        if self.synced:
            return []
        self.synced = True
        event("synced", working_orders=len(self.ledger.working), positions=len(self.ledger.positions))
        return [a for symbol in sorted(self.targets) for a in self.evaluate(symbol)]

    def on_quote(self, q: Quote) -> list[Action]:
        snap = QuoteSnapshot(_price(q.bid), _price(q.ask), _price(q.last), self.wall())
        if snap.reference <= 0:
            log_every(
                f"quote.bad.{q.symbol}", 30, "WARNING", f"ignored a quote of {q.symbol} with no usable price"
            )
            return []
        self.quotes[q.symbol] = snap
        if self.market_now() is None:
            return []  # the simulator's day is not known yet: no day record on the wrong date
        day = self.day_record()
        start = day.start.get(q.symbol)
        if start is not None and start[1] is None and snap.reference > 0:
            self.ledger.set_day_reference(day.trading_day, q.symbol, snap.reference)
            self._day = None
        return []

    def on_gateway(self, g: GatewayStatus) -> list[Action]:
        was_ready = self.gateway is not None and self.gateway.state == "READY"
        self.gateway = g
        self.clock.anchor(g.gateway_time_ns)
        if g.state == "READY" and not was_ready:
            return [Reconcile(f"gateway {g.state}")]
        return []

    def on_order_event(self, e: OrderEvent) -> list[Action]:
        """A status report from the broker (or local paper trading), tolerated in any order."""
        current = self.ledger.order(e.client_order_id)
        if current is None:
            self.count("order_events_unknown")
            if is_ours(e.client_order_id):
                log_every(
                    "order.unknown", 30, "WARNING", f"status {e.status} for unknown order {e.client_order_id}"
                )
            return []
        e = _as_rejection(e, current)
        order = dataclasses.replace(current)
        order.broker_order_id = e.order_id or order.broker_order_id
        order.perm_id = e.perm_id or order.perm_id
        order.reported_filled = max(order.reported_filled, e.filled)
        step = next_state(order.status, e.status)
        if step.outcome == "impossible":
            self.count("transitions_refused")
            log_every(
                f"order.impossible.{order.client_order_id}", 30, "WARNING",
                f"refused impossible transition {order.status} -> {e.status} for {order.client_order_id}",
            )  # fmt: skip
        if step.changed:
            order.status = step.state
            if e.status in ("REJECTED", "INACTIVE", "CANCELLED"):
                order.reason = e.reason or order.reason
                order.error_code = e.error_code or order.error_code
        if order == current:
            return []
        order.updated_ns = self.wall()
        self.ledger.save_order(order)
        if not step.changed:
            return []
        return self._status_changed(order)

    def _status_changed(self, order: OrderRecord) -> list[Action]:
        event("order_status", client_order_id=order.client_order_id, symbol=order.symbol, status=order.status,
              filled=order.filled, reason=repr(order.reason))  # fmt: skip
        actions: list[Action] = [Publish(f"order.{order.status.lower()}", order_event(order))]
        if order.status in ("REJECTED", "INACTIVE"):
            self.breaker.record_failure(f"{order.client_order_id} {order.status}: {order.reason}")
        elif order.status in ("SUBMITTED", "PARTIALLY_FILLED", "FILLED"):
            self.breaker.record_success()
        if order.status in TERMINAL:
            self.cancel_sent.pop(order.client_order_id, None)
        if order.status == "CANCELLED":
            actions += self.evaluate(
                order.symbol
            )  # e.g. cancelled to change direction, or timed out: re-price
        return actions

    def on_fill(self, f: Fill) -> list[Action]:
        """Book a fill exactly once (by exec_id); a re-published fill may bring its commission."""
        order = self.ledger.order(f.client_order_id)
        if order is None:
            self.count("fills_unknown_order")
            log_every(
                "fill.unknown", 30, "WARNING", f"fill {f.exec_id} for unknown order {f.client_order_id!r}"
            )
            return []
        day = self.trading_day()
        if self.ledger.has_fill(f.exec_id):
            if f.commission is not None and self.ledger.set_commission(f.exec_id, f.commission, day):
                self._day = None
                return self.check_daily_loss()
            return []
        if f.quantity <= 0 or f.price <= 0 or f.symbol != order.symbol or f.side != order.side:
            self.count("fills_malformed")
            log_every(
                "fill.bad", 30, "ERROR", f"fill {f.exec_id} does not match order {order.client_order_id}: {f}"
            )
            return []
        booked = FillIn(
            f.exec_id, f.client_order_id, f.symbol, f.side, f.quantity, f.price, f.commission, f.exec_ns
        )
        updated = self.ledger.apply_fill(booked, day, self.wall())
        if updated is None:
            return []
        self._day = None
        self.count("fills")
        pos = self.ledger.positions[f.symbol]
        event("fill", exec_id=f.exec_id, client_order_id=f.client_order_id, symbol=f.symbol, side=f.side,
              quantity=f.quantity, price=f.price, position=pos.quantity)  # fmt: skip
        actions: list[Action] = [
            Publish("fill", f),
            Publish("position", Position(symbol=f.symbol, quantity=pos.quantity, avg_cost=pos.avg_cost)),
        ]
        if updated.status != order.status:
            actions += self._status_changed(updated)
        return actions + self.check_daily_loss()

    def on_ack(self, ack: OrderAck) -> list[Action]:
        """The bridge placed (or already had) the order."""
        return self.on_order_event(
            OrderEvent(client_order_id=ack.client_order_id, order_id=ack.order_id, status=ack.status)
        )

    def on_send_refused(self, client_order_id: str, error: str) -> list[Action]:
        """The bridge answered no: the order certainly did not reach the Gateway."""
        return self.on_order_event(
            OrderEvent(client_order_id=client_order_id, status="REJECTED", reason=error)
        )

    def on_send_lost(self, client_order_id: str, error: str) -> list[Action]:
        """No answer at all: the order may or may not be at the Gateway; reconciliation finds out by orderRef."""
        self.breaker.record_failure(f"{client_order_id}: {error}")
        log_every("send.lost", 10, "WARNING", f"no answer placing {client_order_id} ({error}); reconciling")
        return [Reconcile("a PlaceOrder got no answer")]

    # ------------------------------------------------------------------ decisions

    def evaluate(self, symbol: str, *, fresh: bool = False) -> list[Action]:
        """Order what it takes to move from position + working orders to the symbol's latest target.

        `fresh`: the target just arrived (its bar is what the order answers); else it is re-decided after a
        cancel or a reconciliation."""
        t = self.targets.get(symbol)
        if t is None:
            return []
        quote = self.quotes.get(symbol)
        if quote is None or quote.reference <= 0:
            return self._reject(symbol, Rejection("quote", f"no quote for {symbol}: cannot size the target"))
        target = target_shares(t.weight, self.settings.position_notional, quote.reference)
        position = self.position(symbol)
        mine = [o for o in self.ledger.working.values() if o.symbol == symbol]
        working = sum((o.signed_pending() for o in mine), start=Decimal(0))
        if not worth_trading(target, position + working):
            return []
        delta = order_delta(target, position, working)
        opposite = [o for o in mine if o.working and (o.sign > 0) != (delta > 0)]
        if opposite:  # never trade against our own working order: cancel it, re-decide when it is gone
            return self.cancel_orders(opposite, "target changed direction")
        why = t.reason if fresh else f"re-decided: {t.reason}"
        return self.place(
            symbol,
            "BUY" if delta > 0 else "SELL",
            abs(delta),
            why=why,
            decided_on_ns=t.feature_end_ns if fresh else 0,
        )

    def place(
        self,
        symbol: str,
        side: Literal["BUY", "SELL"],
        quantity: Decimal,
        *,
        why: str = "",
        decided_on_ns: int = 0,
        operator: bool = False,
    ) -> list[Action]:
        """Size, price and check one order; on success it is in the ledger before it is returned to be sent."""
        intent = self._intent(symbol, side, quantity)
        if isinstance(intent, Rejection):
            return self._reject(symbol, intent)
        rejection = first_rejection(intent, self.risk_context(symbol, operator=operator), self.limits)
        if rejection is not None:
            return self._reject(symbol, rejection)
        now = self.wall()
        order = OrderRecord(
            client_order_id=new_client_order_id(symbol, now),
            symbol=symbol,
            side=side,
            quantity=quantity,
            order_type=intent.order_type,
            limit_price=intent.limit_price,
            reduce_only=intent.reduce_only,
            created_ns=now,
            updated_ns=now,
            decided_on_ns=decided_on_ns,
            why=why,
        )
        self.ledger.insert_order(order)
        self.recent_orders.append(now)
        self.breaker.order_sent()
        self.count("orders")
        event("order_new", client_order_id=order.client_order_id, symbol=symbol, side=side, quantity=quantity,
              order_type=order.order_type, limit=order.limit_price, reduce_only=order.reduce_only)  # fmt: skip
        return [Send(order), Publish("order.new", order_event(order))]

    def _intent(
        self, symbol: str, side: Literal["BUY", "SELL"], quantity: Decimal
    ) -> OrderIntent | Rejection:
        exposure = self.position(symbol) + self.working_shares(symbol)
        reduce = is_reduce_only(side, quantity, exposure)
        if self.settings.order_type == "MKT":
            return OrderIntent(symbol, side, quantity, "MKT", None, reduce)
        quote = self.quotes.get(symbol)
        if quote is None or quote.reference <= 0:
            return Rejection("quote", f"no quote for {symbol}: cannot price the order")
        tick = self.ticks.get(symbol)
        if tick is None:
            return Rejection(
                "contract", f"minimum tick of {symbol} unknown (no contract details from the bridge)"
            )
        limit = marketable_limit(side, quote, self.limits.price_collar_bps, tick)
        return OrderIntent(symbol, side, quantity, "LMT", limit, reduce)

    def cancel_orders(self, orders: list[OrderRecord], why: str) -> list[Action]:
        now = self.wall()
        actions: list[Action] = []
        for o in orders:
            last = self.cancel_sent.get(o.client_order_id, 0)
            if o.working and now - last > CANCEL_RESEND_SECONDS * 1e9:
                self.cancel_sent[o.client_order_id] = now
                event("order_cancel", client_order_id=o.client_order_id, symbol=o.symbol, why=repr(why))
                actions.append(Cancel(o.client_order_id))
        return actions

    def expire_orders(self) -> list[Action]:
        """Cancel working orders older than ORDER_TIMEOUT_SECONDS."""
        timeout = self.settings.order_timeout_seconds
        old = [o for o in self.ledger.working.values() if is_expired(o, self.wall(), timeout)]
        return self.cancel_orders(old, f"working longer than {timeout:g}s") if old else []

    def _reject(self, symbol: str, rejection: Rejection) -> list[Action]:
        self.count(f"rejected_{rejection.rule}")
        self.last_rejection = f"{symbol} {rejection}"
        log_every(
            f"reject.{rejection.rule}.{symbol}", 30, "WARNING", f"order for {symbol} rejected by {rejection}"
        )
        return []

    # ------------------------------------------------------------------ kill switch

    def check_daily_loss(self) -> list[Action]:
        """Trip the kill switch when today's P&L reaches -DAILY_LOSS_LIMIT (it stays until an operator resumes)."""
        loss = self.daily_pnl()
        if self.halt.halted or loss > -self.limits.daily_loss_limit:
            return []
        return self.trip_halt(
            f"daily loss limit: today's P&L {loss:,.2f} <= -{self.limits.daily_loss_limit:,.2f}", "daily_loss"
        )

    def trip_halt(self, reason: str, source: str) -> list[Action]:
        """Persist the halt, cancel every working order that adds risk, tell everyone."""
        self.halt = self.ledger.set_halt(reason, source)
        event("halt", reason=repr(reason), source=source)
        self.count("halts")
        working = [o for o in self.ledger.working.values() if o.working and not o.reduce_only]
        alert = Alert(
            severity="CRITICAL",
            code=f"halt.{source}",
            message=f"trading halted: {reason}",
            remedy="look at `bin/trader status`, then `bin/trader resume` when it is safe",
            evidence={"daily_pnl": str(self.daily_pnl())},
        )
        return [
            *self.cancel_orders(working, f"halted: {reason}"),
            Publish("alert", alert),
            self.publish_risk(),
        ]

    def resume(self) -> str | None:
        """Lift the halt; refused (the reason returned) while today's loss is still beyond the limit."""
        loss = self.daily_pnl()
        if loss <= -self.limits.daily_loss_limit:
            return (
                f"today's P&L {loss:,.2f} is still beyond -{self.limits.daily_loss_limit:,.2f}: "
                "trading stays halted (raise DAILY_LOSS_LIMIT or wait for the next trading day)"
            )
        self.halt = self.ledger.clear_halt()
        self.breaker.record_success()
        event("resume")
        return None

    def flatten(self) -> list[Action]:
        """Halt, cancel every working order and close every position with reduce-only orders."""
        actions: list[Action] = []
        if not self.halt.halted:
            actions += self.trip_halt("flatten by operator", "flatten")
        actions += self.cancel_orders([o for o in self.ledger.working.values() if o.working], "flatten")
        for symbol, pos in sorted(self.ledger.positions.items()):
            if pos.quantity != 0:
                side: Literal["BUY", "SELL"] = "SELL" if pos.quantity > 0 else "BUY"
                actions += self.place(
                    symbol, side, abs(pos.quantity), why="flatten by operator", operator=True
                )
        return actions

    # ------------------------------------------------------------------ views of the book

    def count(self, name: str, n: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def position(self, symbol: str) -> Decimal:
        pos = self.ledger.positions.get(symbol)
        return pos.quantity if pos is not None else Decimal(0)

    def working_shares(self, symbol: str) -> Decimal:
        return sum(
            (o.signed_pending() for o in self.ledger.working.values() if o.symbol == symbol), Decimal(0)
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
            return self.ledger.day(day) or DayRecord(day, self.ledger.cash(), Decimal(0), Decimal(0), {})
        if self._day is None or self._day.trading_day != day:
            self._day = self.ledger.open_day(day, self.marks())
        return self._day

    def book(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {s: (p.quantity, p.avg_cost) for s, p in self.ledger.positions.items()}

    def daily_pnl(self) -> Decimal:
        day = self.day_record()
        return pnl.daily_pnl(self.ledger.cash(), day.start_cash, self.book(), day.start, self.marks())

    def risk_context(self, symbol: str, *, operator: bool = False) -> RiskContext:
        now = self.wall()
        while self.recent_orders and self.recent_orders[0] < now - 60 * 10**9:
            self.recent_orders.popleft()
        working: dict[str, Decimal] = {}
        for o in self.ledger.working.values():
            working[o.symbol] = working.get(o.symbol, Decimal(0)) + o.signed_pending()
        market_now = self.market_now()
        g = self.gateway
        return RiskContext(
            positions={s: p.quantity for s, p in self.ledger.positions.items()},
            working=working,
            marks=self.marks(),
            quote=self.quotes.get(symbol),
            now_ns=now,
            session=None if market_now is None else session_at(market_now),
            gateway_state=g.state if g else "",
            gateway_ready=g is not None and g.state == "READY" and g.orders_allowed,
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
            gross_exposure=pnl.gross_exposure(self.book(), self.marks()),
        )
        return Publish("risk", state)
