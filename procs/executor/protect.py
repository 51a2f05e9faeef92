"""Protective stops, a component of the executor's core: after every fill, position report, reconciliation and
restart, each open position in a traded symbol has exactly one stop of ours at the broker (STP or TRAIL, GTC), of
its size and side. Off unless STOP_LOSS_PERCENT or TRAILING_STOP_PERCENT is set (or the ledger still holds stops).

It carries out stops.plan's steps (create, IB's modify, cancel) as ledger rows and actions, alerts when a stop had
to be re-created or an extra one cancelled, and keeps a stopped-out symbol from re-entering before the next bar.
The core (engine.Executor) calls it at each point a stop may change. Stops only reduce risk: they go out while
halted or flattening. It must never count a stop as working exposure, and never retry a refused stop in a loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Literal, cast

from procs.executor.actions import Action, Modify, Publish, Send, order_event
from procs.executor.book import Book
from procs.executor.desk import OrderDesk
from procs.executor.ledger import Ledger
from procs.executor.orders import ADOPTED, TERMINAL, OrderRecord
from procs.executor.stops import Create, Remove, Resize, Unprotectable, is_stop, new_stop_id, plan
from shared.log import event, log_every
from shared.messages import Alert, Fill, GatewayStatus, OrderEvent

REFUSED_RETRY_SECONDS = 60.0  # a stop the broker refused is tried again this much later, not at once


class ProtectiveStops:
    """One stop per open position, held at the broker; the core's hooks call in here."""

    def __init__(self, book: Book, ledger: Ledger, desk: OrderDesk) -> None:
        self.book = book
        self._ledger = ledger
        self.desk = desk
        self.stopped_out: dict[
            str, int
        ] = {}  # symbol -> when its stop filled: no re-entry before the next bar
        self.stop_lost: dict[
            str, str
        ] = {}  # symbol -> why its stop went away without us (re-creation alerts)
        self.stop_cancelling: set[str] = set()
        self.stop_refused: dict[str, int] = {}  # symbol -> when the broker refused its stop
        # symbols whose stop the bridge refused to send (Gateway not READY): tried again at the next
        # reconciliation, which runs as soon as the Gateway is READY -- not at once (a loop), not in 60 s
        self.stop_unsent: set[str] = set()
        # while the Gateway was away a stop may have filled unseen: an order sized from the ledger could then
        # cross zero (the chaos run's NVDA: a stop's fill while away + a flip sized from before it = twice the
        # position). Orders in a symbol with a stop wait for the reconciliation that books what happened.
        self.stops_unverified = False
        self.waiting_for_stops: dict[str, bool] = {}  # symbol -> was its target fresh
        self.unprotectable: dict[str, str] = {}  # symbol -> why no stop can be placed (alerted once)
        self.unprotected_since: dict[str, int] = {}  # symbol -> since when it has a position and no live stop
        self.stop_triggers: dict[str, Decimal] = {}  # stop -> its live trigger as the broker last said it

    @property
    def stops_enabled(self) -> bool:
        s = self.book.settings
        return bool(s.stop_loss_percent or s.trailing_stop_percent) or bool(self._ledger.stops)

    def stops_of(self, symbol: str) -> list[OrderRecord]:
        return [o for o in self._ledger.stops.values() if o.symbol == symbol]

    # ------------------------------------------------------------------ keeping one stop per position

    def protect_all(self) -> list[Action]:
        if not self.stops_enabled or not self.book.synced:
            return []
        self.stop_unsent.clear()  # a reconciliation: the bridge answers again, a stop it refused goes out now
        held = {s for s, p in self._ledger.positions.items() if p.quantity != 0}
        symbols = (
            held
            | {o.symbol for o in self._ledger.stops.values()}
            | {s for s, q in self.book.broker_positions.items() if q}
        )
        return [a for symbol in sorted(symbols) for a in self.protect(symbol)]

    def protect(self, symbol: str) -> list[Action]:
        """Carry out the plan for `symbol`'s stop; called after fills, reports, reconciliation, restart."""
        if not self.stops_enabled or not self.book.synced:
            return []
        traded = symbol in self.book.limits.symbols
        position = self.book.flatten_position(symbol) if traded else Decimal(0)
        pos = self._ledger.positions.get(symbol)
        avg = pos.avg_cost if pos is not None else Decimal(0)
        steps = plan(
            position,
            avg,
            self.book.settings.stop_for(symbol),
            self.stops_of(symbol),
            self.book.ticks.get(symbol),
        )
        actions: list[Action] = []
        for step in steps:
            if isinstance(step, Remove):
                actions += self._remove(symbol, step)
            elif isinstance(step, Resize):
                actions += self._resize(step)
            elif isinstance(step, Create):
                actions += self._create(symbol, step)
            else:
                actions += self._unprotectable(symbol, step)
        self._note_protection(symbol, position)
        return actions

    def _note_protection(self, symbol: str, position: Decimal) -> None:
        live = any(o.status in ("SUBMITTED", "PARTIALLY_FILLED") for o in self.stops_of(symbol))
        if position == 0 or live or self.book.settings.stop_for(symbol) is None:
            self.unprotected_since.pop(symbol, None)
        else:
            self.unprotected_since.setdefault(symbol, self.book.wall())

    def _create(self, symbol: str, step: Create) -> list[Action]:
        now = self.book.wall()
        refused = self.stop_refused.get(symbol, 0)
        if (refused and now - refused < REFUSED_RETRY_SECONDS * 1e9) or symbol in self.stop_unsent:
            return []
        self.unprotectable.pop(symbol, None)
        lost = self.stop_lost.pop(symbol, "")
        what = f"{step.kind} {step.trailing_percent}%" if step.kind == "TRAIL" else f"STP {step.stop_price}"
        order = OrderRecord(
            client_order_id=new_stop_id(symbol, now),
            symbol=symbol,
            side=step.side,
            quantity=step.quantity,
            order_type=cast(
                Literal["LMT", "MKT"], step.kind
            ),  # the ledger's column holds STP/TRAIL for stops
            limit_price=step.stop_price,  # a stop's trigger (None: a TRAIL's moves at the broker)
            reduce_only=True,
            created_ns=now,
            updated_ns=now,
            why=f"protective stop {what}" + (f", re-created: {lost}" if lost else ""),
        )
        self._ledger.insert_order(order)
        self.book.count("stops_created")
        event("stop_new", client_order_id=order.client_order_id, symbol=symbol, side=step.side,
              quantity=step.quantity, stop=what, recreated=bool(lost))  # fmt: skip
        actions: list[Action] = [Send(order), Publish("order.new", order_event(order))]
        if lost:
            self.book.count("stops_recreated")
            actions.append(Publish("alert", Alert(
                severity="WARNING", code="stop.recreated",
                message=f"the protective stop of {symbol} was gone ({lost}); re-created: {step.side} {step.quantity} "
                f"{what} ({order.client_order_id})",
                evidence={"symbol": symbol, "client_order_id": order.client_order_id, "why": lost})))  # fmt: skip
        return actions

    def _resize(self, step: Resize) -> list[Action]:
        stop = self._ledger.stops.get(step.client_order_id)
        if stop is None or stop.status == "NEW":
            return []  # not at the broker yet: resized once it is acknowledged
        updated = dataclasses.replace(stop, quantity=step.quantity, updated_ns=self.book.wall())
        self._ledger.save_order(updated)
        self.book.count("stops_resized")
        event("stop_resize", client_order_id=stop.client_order_id, symbol=stop.symbol, was=stop.quantity,
              quantity=step.quantity)  # fmt: skip
        return [Modify(stop.client_order_id, step.quantity)]

    def _remove(self, symbol: str, step: Remove) -> list[Action]:
        stop = self._ledger.stops.get(step.client_order_id)
        if stop is None:
            return []
        self.stop_cancelling.add(stop.client_order_id)
        actions = self.desk.cancel_orders([stop], f"stop: {step.why}")
        if actions and step.why.startswith(("extra", "wrong")):
            self.book.count("stops_extra_cancelled")
            actions.append(Publish("alert", Alert(
                severity="WARNING", code="stop.extra",
                message=f"{symbol}: cancelled stop {stop.client_order_id} ({step.why})",
                evidence={"symbol": symbol, "client_order_id": stop.client_order_id})))  # fmt: skip
        return actions

    def _unprotectable(self, symbol: str, step: Unprotectable) -> list[Action]:
        if self.unprotectable.get(symbol) == step.why:
            return []  # alerted already: not attempted again until something changes
        self.unprotectable[symbol] = step.why
        log_every(f"stop.none.{symbol}", 300, "WARNING", f"{symbol}: {step.why}")
        return [Publish("alert", Alert(
            severity="CRITICAL", code="stop.unprotected",
            message=f"{symbol} has a position and no protective stop: {step.why}",
            remedy="check the symbol's contract at the bridge (`bin/trader positions`)",
            evidence={"symbol": symbol}))]  # fmt: skip

    # ------------------------------------------------------------------ the core's hooks

    def status_changed(self, order: OrderRecord) -> list[Action]:
        """A stop's status changed (the core's _status_changed, for stops only): a stop gone without us is
        re-created, a refused one is tried again later."""
        event("stop_status", client_order_id=order.client_order_id, symbol=order.symbol, status=order.status,
              filled=order.filled, reason=repr(order.reason))  # fmt: skip
        actions: list[Action] = [Publish(f"order.{order.status.lower()}", order_event(order))]
        if order.status in TERMINAL or order.status == "INACTIVE":
            self.book.cancel_sent.pop(order.client_order_id, None)
            ours = order.client_order_id in self.stop_cancelling
            self.stop_cancelling.discard(order.client_order_id)
            if order.status == "REJECTED" and order.symbol in self.stop_unsent:
                self.stop_lost[order.symbol] = f"not sent: {order.reason}"
            elif order.status == "REJECTED":
                self.stop_refused[order.symbol] = self.book.wall()
                self.stop_lost[order.symbol] = f"refused: {order.reason or order.error_code}"
            elif order.status in ("CANCELLED", "INACTIVE") and not ours:
                self.stop_lost[order.symbol] = order.reason or f"{order.status.lower()} at the broker"
            actions += self.protect(order.symbol)
        elif order.status == "SUBMITTED":
            self.stop_refused.pop(order.symbol, None)
            self._note_protection(order.symbol, self.book.flatten_position(order.symbol))
        return actions

    def send_refused(self, client_order_id: str) -> None:
        """The bridge refused to send an order (the Gateway away, not the broker's no): a stop is retried once
        it is back."""
        stop = self._ledger.stops.get(client_order_id)
        if stop is not None:
            self.stop_unsent.add(stop.symbol)

    def note_trigger(self, e: OrderEvent) -> None:
        """Remember a stop's live trigger as the broker reports it (a TRAIL's moves at the broker only)."""
        if e.stop_price is not None and is_stop(e.client_order_id):
            self.stop_triggers[e.client_order_id] = e.stop_price

    def after_fill(self, f: Fill) -> list[Action]:
        """A fill was newly booked: a stop's fill stops the symbol out until the next bar; the stop follows."""
        if is_stop(f.client_order_id):
            self.stopped_out[f.symbol] = max(f.exec_ns, self.book.market_now() or 0)
            event("stopped_out", symbol=f.symbol, client_order_id=f.client_order_id, price=f.price)
        return self.protect(f.symbol)

    def adopt(self, e: OrderEvent | Fill, why: str) -> list[Action]:
        """A stop of ours (by orderRef) the ledger never saw: written into the ledger, then protect() decides."""
        kind = e.order_type if isinstance(e, OrderEvent) and e.order_type in ("STP", "TRAIL") else "STP"
        now = self.book.wall()
        order = OrderRecord(client_order_id=e.client_order_id, symbol=e.symbol, side=e.side, quantity=e.quantity,
                            order_type=cast(Literal["LMT", "MKT"], kind), limit_price=None, status="SUBMITTED",
                            broker_order_id=e.order_id, perm_id=e.perm_id, reduce_only=True, created_ns=now,
                            updated_ns=now, sent_ns=now, why=f"{ADOPTED}: protective stop; {why}")  # fmt: skip
        self._ledger.insert_order(order)
        self.book.count("stops_adopted")
        event("stop_adopted", client_order_id=order.client_order_id, symbol=order.symbol, why=repr(why))
        return [Publish("order.submitted", order_event(order)), *self.protect(order.symbol)]

    def on_gateway(self, g: GatewayStatus) -> None:
        """The Gateway went away while stops were working: one may fill unseen, so orders wait for a check."""
        if g.state != "READY" and any(o.working for o in self._ledger.stops.values()):
            self.stops_unverified = True

    def holds_back(self, symbol: str, *, fresh: bool) -> bool:
        """Whether the symbol's target must wait: its stops are unverified since the Gateway was away, or it was
        stopped out and the target is not from a newer bar."""
        if self.stops_unverified and any(o.working for o in self.stops_of(symbol)):
            self.waiting_for_stops[symbol] = fresh or self.waiting_for_stops.get(symbol, False)
            self.book.count("orders_wait_for_stop_check")
            return True  # re-decided once the reconciliation has booked what the stops did meanwhile
        since = self.stopped_out.get(symbol)
        if since is not None and symbol not in self.book.flattening:
            t = self.book.targets.get(symbol)
            if t is None or not fresh or t.feature_end_ns <= since:
                return True  # stopped out: the strategy's target is taken up again from the next bar on
            del self.stopped_out[symbol]
        return False

    def gone(self, seen: set[str], snapshot_ns: int, started_ns: int, grace_ns: int) -> Iterator[OrderEvent]:
        """Stops the broker's open-order list no longer holds (a human's cancel in TWS, a Gateway restart, or
        never placed), as the CANCELLED events the core applies; protect() then re-creates what is missing."""
        now = self.book.wall()
        for o in list(self._ledger.stops.values()):
            in_flight = o.updated_ns >= started_ns and now - o.updated_ns < grace_ns
            newer = o.updated_ns > snapshot_ns or o.created_ns > snapshot_ns
            if o.client_order_id in seen or not o.working or in_flight or newer:
                continue
            why = "never reached the broker" if o.status == "NEW" else "no longer open at the broker"
            yield OrderEvent(
                client_order_id=o.client_order_id, status="CANCELLED", reason=f"{why} (reconciliation)"
            )

    def verified(self) -> dict[str, bool]:
        """The broker's executions are booked (reconciliation asks them first): the symbols that waited, each
        with whether its target was fresh, to be re-decided by the core."""
        self.stops_unverified = False
        waiting, self.waiting_for_stops = self.waiting_for_stops, {}
        return waiting

    def stop_view(self) -> dict[str, dict[str, str]]:
        """Each symbol's stop as `bin/trader positions` shows it: type, trigger (a TRAIL's as the broker last
        reported it), quantity still to fill and order state."""
        out: dict[str, dict[str, str]] = {}
        for coid in [c for c in self.stop_triggers if c not in self._ledger.stops]:
            del self.stop_triggers[coid]  # finished stops: forget their trigger
        for o in sorted(self._ledger.stops.values(), key=lambda o: o.created_ns):
            if not o.working:
                continue
            live = self.stop_triggers.get(o.client_order_id)
            trigger = f"{live.normalize():f}" if live is not None else ""
            if not trigger and o.limit_price is not None:
                trigger = f"{o.limit_price}"
            spec = self.book.settings.stop_for(o.symbol)
            if str(o.order_type) == "TRAIL" and spec is not None:
                trigger = f"{trigger} (trail {spec[1]}%)" if trigger else f"trail {spec[1]}%"
            out.setdefault(o.symbol, {"type": o.order_type, "trigger": trigger,
                                      "quantity": f"{(o.quantity - o.filled).normalize():f}", "state": o.status,
                                      "client_order_id": o.client_order_id})  # fmt: skip
        return out

    def unprotected(self) -> dict[str, float]:
        now = self.book.wall()
        return {s: round((now - t) / 1e9, 1) for s, t in sorted(self.unprotected_since.items())}
