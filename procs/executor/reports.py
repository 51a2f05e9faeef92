"""The broker's reports, for the executor's core: order statuses (tolerated in any order), the open-order list,
fills (booked once by exec_id), acknowledgements and refused or lost sends, and the orders of ours the ledger never
saw (adopted).

Part of the core (engine.Executor owns one). What the broker says is written to the ledger before any action is
returned; a final status only the client library asserted is never applied before the broker's open-order list
confirms it. It never places an order itself: a cancelled order's symbol is handed back to the core to re-decide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import msgspec

from procs.executor.actions import Action, Publish, Reconcile, order_event
from procs.executor.book import Book
from procs.executor.hours import DAY_NS, trading_day
from procs.executor.ledger import FillIn, Ledger
from procs.executor.orders import ADOPTED, TERMINAL, WORKING, OrderRecord, is_ours, next_state
from procs.executor.protect import ProtectiveStops
from procs.executor.risk import Rejection
from procs.executor.stops import is_stop
from shared.log import event, log_every
from shared.messages import Alert, Fill, OrderAck, OrderEvent, OrderStatusName, Position

Redecide = Callable[
    [str], list[Action]
]  # the core's evaluate(symbol): re-decide after a cancel or a flatten fill
CheckLoss = Callable[[], list[Action]]  # the kill switch's check after a booked fill or commission


class BrokerReports:
    """Applies the broker's reports to the ledger and says what follows from them."""

    def __init__(
        self,
        book: Book,
        ledger: Ledger,
        stops: ProtectiveStops,
        redecide: Redecide,
        check_daily_loss: CheckLoss,
    ) -> None:
        self.book = book
        self._ledger = ledger
        self.stops = stops
        self.redecide = redecide
        self.check_daily_loss = check_daily_loss

    def on_order_event(self, e: OrderEvent) -> list[Action]:
        """A status report from the broker (or local paper trading), tolerated in any order."""
        self.stops.note_trigger(e)
        current = self._ledger.order(e.client_order_id)
        if current is None:
            self.book.count("order_events_unknown")
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
            self.book.count("transitions_refused")
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
        order.updated_ns = self.book.wall()
        self._ledger.save_order(order)
        if not step.changed:
            return []
        return self._status_changed(order)

    def _unconfirmed(self, current: OrderRecord, e: OrderEvent) -> list[Action]:
        """A final status only the client library asserted: remembered, not applied; the broker's open-order list
        (reconciliation, asked for at once) decides whether the order is gone or still working."""
        if not current.working or current.unconfirmed == e.status:
            return []
        order = dataclasses.replace(current, unconfirmed=e.status, reason=e.reason or current.reason,
                                    error_code=e.error_code or current.error_code, updated_ns=self.book.wall())  # fmt: skip
        self._ledger.save_order(order)
        self.book.count("unconfirmed_final_status")
        log_every(
            f"order.unconfirmed.{order.client_order_id}", 30, "WARNING",
            f"{order.client_order_id}: the client library says {e.status} ({e.reason or e.error_code}); it stays "
            "working until the broker's open-order list confirms",
        )  # fmt: skip
        return [Reconcile(f"unconfirmed {e.status} for {order.client_order_id}")]

    def on_listed(self, e: OrderEvent) -> list[Action]:
        """The broker's open-order list holds this order of ours: it is working, whatever was said before."""
        self.stops.note_trigger(e)
        current = self._ledger.order(e.client_order_id)
        if current is None:
            return self.adopt(e, "the broker lists it as open")
        working = e if e.status in WORKING else msgspec.structs.replace(e, status="SUBMITTED")
        if current.status not in ("CANCELLED", "REJECTED"):
            return self.on_order_event(msgspec.structs.replace(working, confirmed=True))
        order = dataclasses.replace(current, status=working.status, unconfirmed="", updated_ns=self.book.wall(),
                                    reason=f"working again: the broker still lists it (was {current.status})")  # fmt: skip
        order.reported_filled = max(order.reported_filled, e.filled)
        self._ledger.save_order(order)
        self.book.count("orders_revived")
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
        if is_stop(e.client_order_id):
            return self.stops.adopt(e, why)
        quantity = e.quantity
        limit = e.limit_price if isinstance(e, OrderEvent) else None
        order_type: Literal["LMT", "MKT"] = (
            "MKT" if isinstance(e, OrderEvent) and e.order_type == "MKT" else "LMT"
        )
        now = self.book.wall()
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
        self._ledger.insert_order(order)
        self.book.count("orders_adopted")
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
        if is_stop(order.client_order_id):
            return self.stops.status_changed(order)
        event("order_status", client_order_id=order.client_order_id, symbol=order.symbol, status=order.status,
              filled=order.filled, reason=repr(order.reason))  # fmt: skip
        actions: list[Action] = [Publish(f"order.{order.status.lower()}", order_event(order))]
        if order.status in ("REJECTED", "INACTIVE"):
            self.book.breaker.record_failure(f"{order.client_order_id} {order.status}: {order.reason}")
        elif order.status in ("SUBMITTED", "PARTIALLY_FILLED", "FILLED"):
            self.book.breaker.record_success()
        if order.status in TERMINAL:
            self.book.cancel_sent.pop(order.client_order_id, None)
        if order.status == "CANCELLED" or (order.status == "FILLED" and order.symbol in self.book.flattening):
            actions += self.redecide(order.symbol)  # e.g. cancelled to change direction, or timed out
        return actions

    def on_fill(self, f: Fill) -> list[Action]:
        """Book a fill exactly once (by exec_id); a re-published fill may bring its commission; a newly booked
        fill moves the symbol's protective stop."""
        new = not self._ledger.has_fill(f.exec_id)
        actions = self._book_fill(f)
        if new and self._ledger.has_fill(f.exec_id):
            actions += self.stops.after_fill(f)
        return actions

    def _book_fill(self, f: Fill) -> list[Action]:
        order = self._ledger.order(f.client_order_id)
        adopted: list[Action] = []
        if order is None and is_ours(f.client_order_id) and f.quantity > 0 and f.symbol:
            adopted = self.adopt(f, "the broker reports a fill of it")
            order = self._ledger.order(f.client_order_id)
        if order is None:
            self.book.count("fills_unknown_order")
            log_every(
                "fill.unknown", 30, "WARNING", f"fill {f.exec_id} for unknown order {f.client_order_id!r}"
            )
            return []
        day = self.fill_day(f.exec_ns)
        if self._ledger.has_fill(f.exec_id):
            if f.commission is not None and self._ledger.set_commission(f.exec_id, f.commission, day):
                self.book.forget_day()
                return self.check_daily_loss()
            return []
        if f.quantity <= 0 or f.price <= 0 or f.symbol != order.symbol or f.side != order.side:
            self.book.count("fills_malformed")
            log_every(
                "fill.bad", 30, "ERROR", f"fill {f.exec_id} does not match order {order.client_order_id}: {f}"
            )
            return []
        booked = FillIn(
            f.exec_id, f.client_order_id, f.symbol, f.side, f.quantity, f.price, f.commission, f.exec_ns
        )
        updated = self._ledger.apply_fill(booked, day, self.book.wall())
        if updated is None:
            return adopted
        self.book.forget_day()
        self.book.count("fills")
        pos = self._ledger.positions[f.symbol]
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
        today = self.book.trading_day()
        if exec_ns <= 0 or exec_ns > (self.book.market_now() or self.book.wall()) + DAY_NS:
            return today
        return trading_day(exec_ns)

    def on_ack(self, ack: OrderAck) -> list[Action]:
        """The bridge placed (or already had) the order."""
        return self.on_order_event(
            OrderEvent(client_order_id=ack.client_order_id, order_id=ack.order_id, status=ack.status)
        )

    def on_send_refused(self, client_order_id: str, error: str) -> list[Action]:
        """The bridge answered no: the order certainly did not reach the Gateway."""
        self.stops.send_refused(client_order_id)
        return self.on_order_event(
            OrderEvent(client_order_id=client_order_id, status="REJECTED", reason=error)
        )

    def on_send_lost(self, client_order_id: str, error: str) -> list[Action]:
        """No answer at all: the order may or may not be at the Gateway; reconciliation finds out by orderRef."""
        self.book.breaker.record_failure(f"{client_order_id}: {error}")
        log_every("send.lost", 10, "WARNING", f"no answer placing {client_order_id} ({error}); reconciling")
        return [Reconcile("a PlaceOrder got no answer")]

    def withdraw(self, o: OrderRecord, rejection: Rejection) -> list[Action]:
        """An order of the ledger that is not sent after all: it certainly never reached the broker."""
        self.book.count(f"withdrawn_{rejection.rule}")
        return self.on_order_event(
            OrderEvent(client_order_id=o.client_order_id, status="CANCELLED", reason=f"not sent: {rejection}")
        )
