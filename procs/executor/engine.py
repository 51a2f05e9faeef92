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

import msgspec

from procs.executor.actions import Action, Cancel, Publish, Reconcile, Send, order_event
from procs.executor.book import Book
from procs.executor.hours import DAY_NS, trading_day
from procs.executor.ledger import FillIn
from procs.executor.orders import (
    ADOPTED,
    TERMINAL,
    WORKING,
    OrderRecord,
    is_ours,
    may_expire,
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
    fractional_step,
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
    OrderStatusName,
    Position,
    Quote,
    TargetPosition,
)

CANCEL_RESEND_SECONDS = 10.0
HALT_CANCEL_RESEND_SECONDS = (
    2.0  # while halted (or flattening), a cancel is repeated until the broker confirms
)


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
        snap = QuoteSnapshot(_price(q.bid), _price(q.ask), _price(q.last), self.mono())
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
        was_tradable = self.tradable
        self.gateway = g
        self.clock.anchor(g.gateway_time_ns)
        if (g.state == "READY" and not was_ready) or (self.tradable and not was_tradable):
            return [Reconcile(f"gateway {g.state}")]
        return []

    def on_order_event(self, e: OrderEvent) -> list[Action]:
        """A status report from the broker (or local paper trading), tolerated in any order."""
        current = self.ledger.order(e.client_order_id)
        if current is None:
            self.count("order_events_unknown")
            if is_ours(e.client_order_id) and e.symbol and e.quantity > 0 and e.status not in TERMINAL:
                return self.adopt(e, "the broker reports it working")
            return []
        if e.status in ("CANCELLED", "REJECTED") and not e.confirmed:
            return self._unconfirmed(current, e)
        order = dataclasses.replace(current)
        if order.unconfirmed and (e.status in WORKING or e.status in TERMINAL):
            order.unconfirmed = ""  # the Gateway itself spoke of the order since: its word stands
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

    def _unconfirmed(self, current: OrderRecord, e: OrderEvent) -> list[Action]:
        """A final status only the client library asserted: remembered, not applied; the broker's open-order list
        (reconciliation, asked for at once) decides whether the order is gone or still working."""
        if not current.working or current.unconfirmed == e.status:
            return []
        order = dataclasses.replace(current, unconfirmed=e.status, reason=e.reason or current.reason,
                                    error_code=e.error_code or current.error_code, updated_ns=self.wall())  # fmt: skip
        self.ledger.save_order(order)
        self.count("unconfirmed_final_status")
        log_every(
            f"order.unconfirmed.{order.client_order_id}", 30, "WARNING",
            f"{order.client_order_id}: the client library says {e.status} ({e.reason or e.error_code}); it stays "
            "working until the broker's open-order list confirms",
        )  # fmt: skip
        return [Reconcile(f"unconfirmed {e.status} for {order.client_order_id}")]

    def on_listed(self, e: OrderEvent) -> list[Action]:
        """The broker's open-order list holds this order of ours: it is working, whatever was said before."""
        current = self.ledger.order(e.client_order_id)
        if current is None:
            return self.adopt(e, "the broker lists it as open")
        working = e if e.status in WORKING else msgspec.structs.replace(e, status="SUBMITTED")
        if current.status not in ("CANCELLED", "REJECTED"):
            return self.on_order_event(msgspec.structs.replace(working, confirmed=True))
        order = dataclasses.replace(current, status=working.status, unconfirmed="", updated_ns=self.wall(),
                                    reason=f"working again: the broker still lists it (was {current.status})")  # fmt: skip
        order.reported_filled = max(order.reported_filled, e.filled)
        self.ledger.save_order(order)
        self.count("orders_revived")
        alert = Alert(
            severity="WARNING",
            code="order.revived",
            message=f"{order.client_order_id} ({order.side} {order.quantity} {order.symbol}) was marked "
            f"{current.status} but the broker still lists it: it counts as working again",
            evidence={"client_order_id": order.client_order_id, "was": current.status, "now": order.status},
        )
        return [Publish(f"order.{order.status.lower()}", order_event(order)), Publish("alert", alert)]

    def close_unconfirmed(self, o: OrderRecord) -> list[Action]:
        """The broker no longer lists an order whose final status the client library asserted: now it is final."""
        status: OrderStatusName = "REJECTED" if o.unconfirmed == "REJECTED" and o.filled == 0 else "CANCELLED"
        return self.on_order_event(
            OrderEvent(client_order_id=o.client_order_id, status=status, error_code=o.error_code,
                       reason=f"{o.reason} (confirmed: not open at the broker)".strip())
        )  # fmt: skip

    def adopt(self, e: OrderEvent | Fill, why: str) -> list[Action]:
        """An order of ours (by orderRef) that the ledger never saw (power lost right after sending, a restored
        backup): written into the ledger, so it counts against its target and every limit, with an alert."""
        quantity = e.quantity
        limit = e.limit_price if isinstance(e, OrderEvent) else None
        order_type: Literal["LMT", "MKT"] = (
            "MKT" if isinstance(e, OrderEvent) and e.order_type == "MKT" else "LMT"
        )
        now = self.wall()
        order = OrderRecord(
            client_order_id=e.client_order_id,
            symbol=e.symbol,
            side=e.side,
            quantity=quantity,
            order_type=order_type,
            limit_price=limit,
            status="SUBMITTED",
            broker_order_id=e.order_id,
            perm_id=e.perm_id,
            created_ns=now,
            updated_ns=now,
            sent_ns=now,
            why=f"{ADOPTED}: {why}",
        )
        self.ledger.insert_order(order)
        self.count("orders_adopted")
        event("order_adopted", client_order_id=order.client_order_id, symbol=order.symbol, side=order.side,
              quantity=order.quantity, why=repr(why))  # fmt: skip
        alert = Alert(
            severity="WARNING",
            code="order.adopted",
            message=f"an order of ours the ledger did not know, {order.client_order_id} ({order.side} "
            f"{order.quantity} {order.symbol}), was adopted into the ledger: {why}",
            remedy="nothing to do; its symbol is not ordered again for it",
            evidence={"client_order_id": order.client_order_id, "order_id": order.broker_order_id},
        )
        actions: list[Action] = [Publish("order.submitted", order_event(order)), Publish("alert", alert)]
        if isinstance(e, OrderEvent) and e.status != "SUBMITTED":
            actions += self.on_order_event(msgspec.structs.replace(e, confirmed=True))
        return actions

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
        if order.status == "CANCELLED" or (order.status == "FILLED" and order.symbol in self.flattening):
            actions += self.evaluate(
                order.symbol
            )  # e.g. cancelled to change direction, or timed out: re-price
        return actions

    def on_fill(self, f: Fill) -> list[Action]:
        """Book a fill exactly once (by exec_id); a re-published fill may bring its commission."""
        order = self.ledger.order(f.client_order_id)
        adopted: list[Action] = []
        if order is None and is_ours(f.client_order_id) and f.quantity > 0 and f.symbol:
            adopted = self.adopt(f, "the broker reports a fill of it")
            order = self.ledger.order(f.client_order_id)
        if order is None:
            self.count("fills_unknown_order")
            log_every(
                "fill.unknown", 30, "WARNING", f"fill {f.exec_id} for unknown order {f.client_order_id!r}"
            )
            return []
        day = self.fill_day(f.exec_ns)
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
            return adopted
        self._day = None
        self.count("fills")
        pos = self.ledger.positions[f.symbol]
        event("fill", exec_id=f.exec_id, client_order_id=f.client_order_id, symbol=f.symbol, side=f.side,
              quantity=f.quantity, price=f.price, position=pos.quantity)  # fmt: skip
        actions: list[Action] = [
            *adopted,
            Publish("fill", f),
            Publish("position", Position(symbol=f.symbol, quantity=pos.quantity, avg_cost=pos.avg_cost)),
        ]
        if updated.status != order.status:
            actions += self._status_changed(updated)
        return actions + self.check_daily_loss()

    def fill_day(self, exec_ns: int) -> str:
        """The trading day a fill belongs to: its execution's (one executed before midnight and booked after is
        yesterday's), else today's when the execution time is missing or absurdly in the future."""
        today = self.trading_day()
        if exec_ns <= 0 or exec_ns > (self.market_now() or self.wall()) + DAY_NS:
            return today
        return trading_day(exec_ns)

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
        if symbol in self.flattening:  # the operator's flatten overrides every target until resume
            return self.work_flatten(symbol)
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
        quantity = fractional_step(delta, position + working)
        if quantity == 0:
            return []
        why = t.reason if fresh else f"re-decided: {t.reason}"
        return self.place(
            symbol,
            "BUY" if delta > 0 else "SELL",
            quantity,
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
        if symbol in self.blocked:
            ours, theirs = self.blocked[symbol]
            return self._reject(symbol, Rejection(
                "mismatch", f"{symbol}: ledger {ours} but broker {theirs}; nothing is ordered until "
                f"`bin/trader accept-broker {symbol} --reason ...`"))  # fmt: skip
        intent = self._intent(symbol, side, quantity)
        if isinstance(intent, Rejection):
            return self._reject(symbol, intent)
        rejection = first_rejection(intent, self.risk_context(symbol, operator=operator), self.limits)
        if rejection is not None:
            return self._reject(symbol, rejection)
        now = self.wall()
        quote = self.quotes.get(symbol)
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
            decision_quote=quote.reference if quote is not None and quote.reference > 0 else None,
        )
        self.ledger.insert_order(order)
        self.recent_orders.append(self.mono())
        self.breaker.order_sent()
        self.count("orders")
        event("order_new", client_order_id=order.client_order_id, symbol=symbol, side=side, quantity=quantity,
              order_type=order.order_type, limit=order.limit_price, reduce_only=order.reduce_only)  # fmt: skip
        return [Send(order), Publish("order.new", order_event(order))]

    def _intent(
        self, symbol: str, side: Literal["BUY", "SELL"], quantity: Decimal
    ) -> OrderIntent | Rejection:
        working = self.working_shares(symbol)
        reduce = is_reduce_only(side, quantity, self.position(symbol) + working)
        broker = self.broker_positions.get(symbol)
        # the broker's position is the truth: reduce-only must hold there too, on its own (its fills in flight
        # are already in it)
        if broker is not None:
            reduce = reduce and is_reduce_only(side, quantity, broker)
        if self.settings.order_type == "MKT" or (
            reduce and self.farm_down and self.settings.farm_down_pricing == "market"
        ):
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

    def cancel_orders(
        self, orders: list[OrderRecord], why: str, resend_seconds: float = CANCEL_RESEND_SECONDS
    ) -> list[Action]:
        now = self.mono()
        actions: list[Action] = []
        for o in orders:
            last = self.cancel_sent.get(o.client_order_id, 0)
            if o.working and now - last > resend_seconds * 1e9:
                self.cancel_sent[o.client_order_id] = now
                event("order_cancel", client_order_id=o.client_order_id, symbol=o.symbol, why=repr(why))
                actions.append(Cancel(o.client_order_id))
        return actions

    def expire_orders(self) -> list[Action]:
        """Cancel working orders older than ORDER_TIMEOUT_SECONDS."""
        timeout = self.settings.order_timeout_seconds
        old = [
            o
            for o in self.ledger.working.values()
            if may_expire(o) and self.age_s(o.client_order_id, o.created_ns) > timeout
        ]
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
        alert = Alert(
            severity="CRITICAL",
            code=f"halt.{source}",
            message=f"trading halted: {reason}",
            remedy="look at `bin/trader status`, then `bin/trader resume` when it is safe",
            evidence={"daily_pnl": str(self.daily_pnl())},
        )
        return [*self.enforce_halt(), Publish("alert", alert), self.publish_risk()]

    def enforce_halt(self) -> list[Action]:
        """While halted, cancel every working order of ours that adds risk, again and again until the broker says
        it is gone: a cancel can lose the race to its own placement, or be lost with a connection."""
        if not self.halt.halted:
            return []
        adding = [o for o in self.ledger.working.values() if o.working and not o.reduce_only]
        return self.cancel_orders(adding, f"halted: {self.halt.reason}", HALT_CANCEL_RESEND_SECONDS)

    def may_send(self, o: OrderRecord) -> Rejection | None:
        """Whether an order already in the ledger may still go out (a resend, or a send decided before a halt):
        every risk check again, with the order itself no longer counted as working."""
        if o.symbol in self.blocked:
            return Rejection("mismatch", f"{o.symbol}: ledger and broker disagree")
        if self.halt.halted and not o.reduce_only:
            return Rejection("halted", f"trading is halted ({self.halt.reason})")
        intent = OrderIntent(o.symbol, o.side, o.quantity, o.order_type, o.limit_price, o.reduce_only)
        ctx = self.risk_context(o.symbol, operator=o.reduce_only, excluding=o.client_order_id)
        return first_rejection(intent, ctx, self.limits)

    def withdraw(self, o: OrderRecord, rejection: Rejection) -> list[Action]:
        """An order of the ledger that is not sent after all: it certainly never reached the broker."""
        self.count(f"withdrawn_{rejection.rule}")
        return self.on_order_event(
            OrderEvent(client_order_id=o.client_order_id, status="CANCELLED", reason=f"not sent: {rejection}")
        )

    def resume(self) -> str | None:
        """Lift the halt; refused (the reason returned) while today's loss is beyond the limit or a symbol's
        ledger still disagrees with the broker. Ends every flatten."""
        if self.blocked:
            symbol, (ours, theirs) = sorted(self.blocked.items())[0]
            return (
                f"position mismatch in {', '.join(sorted(self.blocked))} ({symbol}: ledger {ours}, broker "
                f"{theirs}): check TWS, then `bin/trader accept-broker {symbol} --reason TEXT`, then resume"
            )
        loss = self.daily_pnl()
        if loss <= -self.limits.daily_loss_limit:
            return (
                f"today's P&L {loss:,.2f} is still beyond -{self.limits.daily_loss_limit:,.2f}: "
                "trading stays halted (raise DAILY_LOSS_LIMIT or wait for the next trading day)"
            )
        self.halt = self.ledger.clear_halt()
        if self.flattening:
            self.ledger.clear_flatten()
            self.flattening = {}
        self.breaker.record_success()
        event("resume")
        return None

    # ------------------------------------------------------------------ flatten: the operator's close-out

    def flatten(self, symbols: list[str]) -> list[Action]:
        """Hold `symbols` (every traded or held symbol when empty, which also halts) at zero until resume: cancel
        what adds risk, then close in reduce-only orders, one working at a time per symbol, never crossing zero."""
        actions: list[Action] = []
        every = not symbols
        if every:
            held = {s for s, p in self.ledger.positions.items() if p.quantity != 0}
            symbols = sorted(
                set(self.limits.symbols) | held | {s for s, q in self.broker_positions.items() if q}
            )
            if not self.halt.halted:
                actions += self.trip_halt("flatten by operator", "flatten")
        self.ledger.set_flatten(symbols)
        self.flattening = self.ledger.flattening()
        self.flat_announced = False
        event("flatten", symbols=",".join(symbols))
        for symbol in symbols:
            actions += self.work_flatten(symbol)
        return actions

    def flatten_position(self, symbol: str) -> Decimal:
        """What is left to close: the smaller of the ledger's and the broker's position, 0 if they disagree in
        sign (closing on a wrong number could cross zero at the broker)."""
        ours = self.position(symbol)
        theirs = self.broker_positions.get(symbol, ours)
        if ours == 0 or theirs == 0 or (ours > 0) != (theirs > 0):
            return Decimal(0)
        return min(ours, theirs, key=abs)

    def work_flatten(self, symbol: str) -> list[Action]:
        """One step of a flatten: cancel working orders that add risk; else, with no order working, one reduce-only
        order of at most MAX_ORDER_NOTIONAL toward zero."""
        left = self.flatten_position(symbol)
        # unsettled: working, or done at the broker with fills still on their way (a FILLED status can come
        # before its last execution): sizing beside one would count those shares twice and cross zero
        mine = [o for o in self.ledger.working.values() if o.symbol == symbol]
        adding = [o for o in mine if o.working and (left == 0 or (o.sign > 0) == (left > 0))]
        if adding:
            return self.cancel_orders(adding, "flatten", HALT_CANCEL_RESEND_SECONDS)
        if mine or left == 0:
            return []
        quantity = abs(left)
        quote = self.quotes.get(symbol)
        if quote is not None and quote.reference > 0 and self.limits.max_order_notional > 0:
            cap = (self.limits.max_order_notional / quote.reference).to_integral_value(rounding="ROUND_FLOOR")
            quantity = min(quantity, max(cap, Decimal(1)))
        side: Literal["BUY", "SELL"] = "SELL" if left > 0 else "BUY"
        return self.place(symbol, side, quantity, why="flatten by operator", operator=True)

    def flatten_step(self) -> list[Action]:
        """The timer's turn: work every flattening symbol, and say so once when all of them are flat."""
        if not self.flattening:
            return []
        actions: list[Action] = []
        for symbol in sorted(self.flattening):
            actions += self.work_flatten(symbol)
        view = self.flatten_view()
        if not self.flat_announced and all(v["state"] == "flat" for v in view.values()):
            self.flat_announced = True
            fills = sum(self.ledger.fill_count(s) - i.fills_before for s, i in self.flattening.items())
            event("flat", symbols=",".join(sorted(view)), fills=fills)
            actions.append(Publish("alert", Alert(
                severity="INFO", code="flatten.done",
                message=f"flat: {', '.join(sorted(view))} closed with {fills} fill(s)",
                remedy="`bin/trader resume` to trade again",
                evidence={"symbols": sorted(view), "fills": fills})))  # fmt: skip
        return actions

    def flatten_view(self) -> dict[str, dict[str, str]]:
        out = {}
        for symbol in sorted(self.flattening):
            working = [o for o in self.ledger.working.values() if o.symbol == symbol]
            left = self.broker_positions.get(symbol, self.position(symbol))
            if self.position(symbol) != left:
                left = max(self.position(symbol), left, key=abs)
            flat = left == 0 and not working
            out[symbol] = {
                "left": f"{left.normalize():f}" if left else "0",
                "working_order": working[0].client_order_id if working else "",
                "state": "flat" if flat else "working",
            }
        return out

    # ------------------------------------------------------------------ the broker's numbers

    def block_mismatch(self, symbol: str, ledger: Decimal, broker: Decimal) -> None:
        """No order at all for `symbol` (reduce-only included) until the operator accepts the broker's number."""
        self.ledger.set_mismatch(symbol, ledger, broker)
        self.blocked = self.ledger.mismatches()
        working = [o for o in self.ledger.working.values() if o.symbol == symbol and o.working]
        self.count("mismatches")
        event("mismatch_blocked", symbol=symbol, ledger=ledger, broker=broker, working=len(working))

    def unblock(self, symbol: str) -> None:
        """The ledger and the broker agree again (a late fill was booked): the symbol may trade after resume."""
        if symbol in self.blocked:
            self.ledger.clear_mismatch(symbol)
            self.blocked = self.ledger.mismatches()
            event("mismatch_cleared", symbol=symbol)

    def accept_broker(
        self, symbol: str, broker: Decimal, price: Decimal, *, method: str, operator: str, reason: str
    ) -> tuple[dict[str, object], list[Action]]:
        """Set the ledger's position to the broker's (cash at `price`), audited; the symbol is no longer blocked."""
        result = self.ledger.accept_broker(
            symbol,
            broker,
            price,
            method=method,
            operator=operator,
            reason=reason,
            trading_day=self.trading_day(),
        )
        self.blocked = self.ledger.mismatches()
        self._day = None
        event("accept_broker", **{k: v for k, v in result.items() if k != "symbol"}, symbol=symbol,
              operator=operator, reason=repr(reason))  # fmt: skip
        pos = self.ledger.positions[symbol]
        alert = Alert(
            severity="WARNING",
            code="ledger.accept_broker",
            message=f"{operator or 'the operator'} set the ledger's {symbol} from {result['ledger_before']} to the "
            f"broker's {broker} ({reason})",
            evidence={k: str(v) for k, v in result.items()},
        )
        actions: list[Action] = [
            Publish("position", Position(symbol=symbol, quantity=pos.quantity, avg_cost=pos.avg_cost)),
            Publish("alert", alert),
            self.publish_risk(),
        ]
        return result, actions
