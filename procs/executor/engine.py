"""The executor's core: targets become orders, broker reports become ledger entries, the kill switch trips.

Messages in, actions out (send, cancel, publish, reconcile): it never touches a socket, so a test drives it with
plain values and a real ledger. It owns the book (state), the ledger (private: adapters read through `view`, an
ExecutorView, and change things only through the commands below), the order desk, the controls (halt, flatten,
mismatches) and the protective stops. An order is written to the ledger before the action that sends it is
returned; fills are booked once by exec_id; a halt is persisted and never lifted except by an operator.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

from procs.executor.actions import Action, Publish, Reconcile
from procs.executor.book import Book
from procs.executor.controls import Controls
from procs.executor.desk import OrderDesk
from procs.executor.hours import MarketClock
from procs.executor.ledger import Ledger
from procs.executor.orders import OrderRecord
from procs.executor.protect import ProtectiveStops
from procs.executor.reports import BrokerReports
from procs.executor.risk import Rejection, RiskContext
from procs.executor.sizing import (
    QuoteSnapshot,
    fractional_step,
    order_delta,
    target_shares,
    to_decimal,
    worth_trading,
)
from procs.executor.stops import is_stop
from procs.executor.view import ExecutorView
from shared.config import Settings
from shared.log import event, log_every
from shared.messages import (
    Fill,
    GatewayStatus,
    OrderAck,
    OrderEvent,
    Position,
    Quote,
    TargetPosition,
)


def _price(x: float) -> Decimal:
    """A quote's price, or 0 (unknown) when the wire says NaN, infinity or a non-positive number."""
    return to_decimal(x) if math.isfinite(x) and x > 0 else Decimal(0)


class Executor:
    """Decides: targets to orders, broker reports to ledger entries, and the kill switch."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        clock: MarketClock,
        wall: Callable[[], int] = time.time_ns,
        mono: Callable[[], int] | None = None,
    ) -> None:
        self._ledger = ledger
        self._book = Book(settings, ledger, clock, wall, mono)
        self._desk = OrderDesk(self._book, ledger)
        self._controls = Controls(self._book, ledger, self._desk)
        self._stops = ProtectiveStops(self._book, ledger, self._desk)
        self._reports = BrokerReports(
            self._book, ledger, self._stops, self.evaluate, self._controls.check_daily_loss
        )
        self.view = ExecutorView(self._book, ledger, self._stops, self._controls)

    # ------------------------------------------------------------------ inputs

    def on_target(self, t: TargetPosition) -> list[Action]:
        """The strategy's target for a symbol: remembered, and decided on once the book is synced."""
        self._book.count("targets")
        if t.symbol not in self._book.limits.symbols:
            return self._desk.reject(
                t.symbol, Rejection("symbol", f"target for {t.symbol!r}, which is not in SYMBOLS")
            )
        if not math.isfinite(t.weight) or abs(t.weight) > 1:
            return self._desk.reject(
                t.symbol, Rejection("weight", f"target weight {t.weight} is outside [-1, 1]")
            )
        self._book.targets[t.symbol] = t
        # the first reconciliation decides what is working; until then only remember
        if not self._book.synced:
            self._book.count("targets_before_sync")
            return []
        return self.evaluate(t.symbol, fresh=True)

    def mark_synced(self) -> list[Action]:
        """The first reconciliation is done: act on the targets that arrived meanwhile."""
        if self._book.synced:
            return []
        self._book.synced = True
        event("synced", working_orders=len(self._ledger.working), positions=len(self._ledger.positions))
        return [a for symbol in sorted(self._book.targets) for a in self.evaluate(symbol)]

    def on_quote(self, q: Quote) -> list[Action]:
        """A quote: the symbol's mark (and, the first of the day, its reference price for today's P&L)."""
        snap = QuoteSnapshot(_price(q.bid), _price(q.ask), _price(q.last), self._book.mono())
        if snap.reference <= 0:
            log_every(
                f"quote.bad.{q.symbol}", 30, "WARNING", f"ignored a quote of {q.symbol} with no usable price"
            )
            return []
        self._book.quotes[q.symbol] = snap
        if self._book.market_now() is None:
            return []  # the simulator's day is not known yet: no day record on the wrong date
        day = self._book.day_record()
        start = day.start.get(q.symbol)
        if start is not None and start[1] is None and snap.reference > 0:
            self._ledger.set_day_reference(day.trading_day, q.symbol, snap.reference)
            self._book.forget_day()
        return []

    def on_gateway(self, g: GatewayStatus) -> list[Action]:
        """The bridge's state: orders wait while it is not READY; READY (again) asks for a reconciliation."""
        self._stops.on_gateway(g)
        was_ready = self._book.gateway is not None and self._book.gateway.state == "READY"
        was_tradable = self._book.tradable
        self._book.gateway = g
        self._book.clock.anchor(g.gateway_time_ns)
        if (g.state == "READY" and not was_ready) or (self._book.tradable and not was_tradable):
            return [Reconcile(f"gateway {g.state}")]
        return []

    # ------------------------------------------------------------------ the broker's reports (reports.py)

    def on_order_event(self, e: OrderEvent) -> list[Action]:
        """A status report from the broker (or local paper trading), tolerated in any order."""
        return self._reports.on_order_event(e)

    def on_listed(self, e: OrderEvent) -> list[Action]:
        """The broker's open-order list holds this order of ours: it is working, whatever was said before."""
        return self._reports.on_listed(e)

    def close_unconfirmed(self, o: OrderRecord) -> list[Action]:
        return self._reports.close_unconfirmed(o)

    def on_fill(self, f: Fill) -> list[Action]:
        """Book a fill exactly once (by exec_id); the symbol's protective stop follows."""
        return self._reports.on_fill(f)

    def on_ack(self, ack: OrderAck) -> list[Action]:
        return self._reports.on_ack(ack)

    def on_send_refused(self, client_order_id: str, error: str) -> list[Action]:
        return self._reports.on_send_refused(client_order_id, error)

    def on_send_lost(self, client_order_id: str, error: str) -> list[Action]:
        return self._reports.on_send_lost(client_order_id, error)

    def withdraw(self, o: OrderRecord, rejection: Rejection) -> list[Action]:
        return self._reports.withdraw(o, rejection)

    # ------------------------------------------------------------------ decisions

    def evaluate(self, symbol: str, *, fresh: bool = False) -> list[Action]:
        """Order what it takes to move from position + working orders to the symbol's latest target.

        `fresh`: the target just arrived (its bar is what the order answers); else it is re-decided after a
        cancel or a reconciliation."""
        if self._stops.holds_back(symbol, fresh=fresh):
            return []
        if symbol in self._book.flattening:  # the operator's flatten overrides every target until resume
            return self._controls.work_flatten(symbol)
        t = self._book.targets.get(symbol)
        if t is None:
            return []
        quote = self._book.quotes.get(symbol)
        if quote is None or quote.reference <= 0:
            return self._desk.reject(
                symbol, Rejection("quote", f"no quote for {symbol}: cannot size the target")
            )
        target = target_shares(t.weight, self._book.settings.position_notional, quote.reference)
        position = self._book.position(symbol)
        mine = [o for o in self._ledger.working.values() if o.symbol == symbol]
        working = sum((o.signed_pending() for o in mine), start=Decimal(0))
        if not worth_trading(target, position + working):
            return []
        delta = order_delta(target, position, working)
        opposite = [o for o in mine if o.working and (o.sign > 0) != (delta > 0)]
        if opposite:  # never trade against our own working order: cancel it, re-decide when it is gone
            return self._desk.cancel_orders(opposite, "target changed direction")
        quantity = fractional_step(delta, position + working)
        if quantity == 0:
            return []
        why = t.reason if fresh else f"re-decided: {t.reason}"
        return self._desk.place(
            symbol,
            "BUY" if delta > 0 else "SELL",
            quantity,
            why=why,
            decided_on_ns=t.feature_end_ns if fresh else 0,
        )

    # ------------------------------------------------------------------ the book's other inputs

    def on_position(self, p: Position) -> list[Action]:
        """The broker's position report: a traded stock's is remembered (its stop follows); any other holding is
        shown, never compared."""
        b = self._book
        if p.sec_type == "STK" and (p.symbol in b.limits.symbols or p.symbol in self._ledger.positions):
            b.broker_positions[p.symbol] = p.quantity
            return self._stops.protect(p.symbol)  # the broker's position changed: its stop follows
        if p.con_id:  # a holding the stack does not trade: shown, never compared
            others = [h for h in b.other_holdings.values() if h.con_id != p.con_id]
            b.note_other_holdings([*others, p] if p.quantity != 0 else others)
        return []

    def anchor_clock(self, gateway_time_ns: int) -> None:
        """The Gateway's time as the bridge last read it: the market clock follows it (the simulator's day)."""
        self._book.clock.anchor(gateway_time_ns)

    def on_contract(self, symbol: str, min_tick: Decimal) -> None:
        """The bridge's contract details: the symbol's minimum tick (orders and stops are priced on it)."""
        self._book.ticks[symbol] = min_tick

    def note_broker_positions(self, traded: dict[str, Decimal], others: list[Position]) -> list[Position]:
        """A reconciliation's read of the broker: its positions in the traded stocks, and every other holding
        (the ones never seen before are returned)."""
        self._book.broker_positions = traded
        return self._book.note_other_holdings(others)

    # ------------------------------------------------------------------ sending

    def clear_to_send(self, order: OrderRecord) -> tuple[OrderRecord | None, list[Action]]:
        """Just before an order goes out (it may have waited for a free socket): its current record when it may
        go, else None and what to do instead. Decided before a halt (or a mismatch) and sent after it, it is
        withdrawn: a halt means nothing risky leaves. A protective stop only reduces risk: it goes out regardless."""
        o = self._ledger.order(order.client_order_id) or order
        if not o.working:
            return None, []  # cancelled or closed while it waited for a free socket
        b = self._book
        if not is_stop(o.client_order_id) and (
            (b.halt.halted and not o.reduce_only) or o.symbol in b.blocked
        ):
            why = "halted" if o.symbol not in b.blocked else "mismatch"
            return None, self.withdraw(o, Rejection(why, f"{why} before it was sent"))
        return o, []

    def may_send(self, o: OrderRecord) -> Rejection | None:
        return self._desk.may_send(o)

    @contextmanager
    def decide_together(self) -> Iterator[None]:
        """One ledger transaction for a group of decisions (group commit); a failed commit raises."""
        with self._ledger.group():
            yield

    def take_unsynced(self) -> bool:
        """Whether new orders were committed since the last disk sync (and forget it: the caller syncs)."""
        unsynced, self._ledger.unsynced = self._ledger.unsynced, False
        return unsynced

    def sync_ledger(self) -> None:
        """fsync the ledger (run from a thread, right behind the sends)."""
        self._ledger.sync()

    # ------------------------------------------------------------------ timers

    def expire_orders(self) -> list[Action]:
        return self._desk.expire_orders()

    def publish_risk(self) -> Publish:
        return self._book.publish_risk()

    def risk_context(self, symbol: str, *, operator: bool = False, excluding: str = "") -> RiskContext:
        return self._book.risk_context(symbol, operator=operator, excluding=excluding)

    # ------------------------------------------------------------------ kill switch, flatten, mismatches

    def check_daily_loss(self) -> list[Action]:
        return self._controls.check_daily_loss()

    def trip_halt(self, reason: str, source: str) -> list[Action]:
        return self._controls.trip_halt(reason, source)

    def enforce_halt(self) -> list[Action]:
        return self._controls.enforce_halt()

    def resume(self) -> str | None:
        return self._controls.resume()

    def flatten(self, symbols: list[str]) -> list[Action]:
        return self._controls.flatten(symbols)

    def flatten_step(self) -> list[Action]:
        return self._controls.flatten_step()

    def block_mismatch(self, symbol: str, ledger: Decimal, broker: Decimal) -> None:
        self._controls.block_mismatch(symbol, ledger, broker)

    def unblock(self, symbol: str) -> None:
        self._controls.unblock(symbol)

    def accept_broker(
        self, symbol: str, broker: Decimal, price: Decimal, *, method: str, operator: str, reason: str
    ) -> tuple[dict[str, object], list[Action]]:
        return self._controls.accept_broker(
            symbol, broker, price, method=method, operator=operator, reason=reason
        )

    # ------------------------------------------------------------------ protective stops

    def protect(self, symbol: str) -> list[Action]:
        return self._stops.protect(symbol)

    def protect_all(self) -> list[Action]:
        return self._stops.protect_all()

    def settle_stops(self, seen: set[str], snapshot_ns: int, started_ns: int, grace_ns: int) -> list[Action]:
        """Stops the broker no longer lists are closed as cancelled; what waited for the check is re-decided."""
        actions: list[Action] = []
        for e in self._stops.gone(seen, snapshot_ns, started_ns, grace_ns):
            actions += self.on_order_event(e)
        for symbol, fresh in sorted(self._stops.verified().items()):
            actions += self.evaluate(symbol, fresh=fresh)
        return actions
