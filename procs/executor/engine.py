"""The executor's core: targets become orders, broker reports become ledger entries, the kill switch trips.

Messages in, actions out (send, cancel, publish, reconcile): it never touches a socket, so a test drives it with
plain values and a real ledger. An order is written to the ledger before the action that sends it is returned;
fills are booked once by exec_id; a halt is persisted and never lifted except by an operator.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from typing import Literal

from procs.executor.actions import Action, Cancel, Publish, Reconcile, Send, order_event
from procs.executor.book import Book
from procs.executor.ledger import FillIn
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
from shared.log import event, log_every
from shared.messages import (
    Alert,
    Fill,
    GatewayStatus,
    OrderAck,
    OrderEvent,
    Position,
    Quote,
    TargetPosition,
)

CANCEL_RESEND_SECONDS = 10.0


def _price(x: float) -> Decimal:
    """A quote's price, or 0 (unknown) when the wire says NaN, infinity or a non-positive number."""
    return to_decimal(x) if math.isfinite(x) and x > 0 else Decimal(0)


class Executor(Book):
    """Decides: targets to orders, broker reports to ledger entries, and the kill switch."""

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
        if not self.synced or self.market_now() is None:
            return []  # the day (and so its P&L) is not known before the first reconciliation
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
