"""The executor's order desk: size, price and check one new order, cancel (and re-cancel) working ones, expire old
ones, and say why an order was refused.

Part of the core (engine.Executor owns one): a new order is written to the ledger before the action that sends it
is returned. It never sends anything itself and never decides what the position should be (engine.py does).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from procs.executor.actions import Action, Cancel, Publish, Send, order_event
from procs.executor.book import Book
from procs.executor.ledger import Ledger
from procs.executor.orders import OrderRecord, may_expire, new_client_order_id
from procs.executor.risk import OrderIntent, Rejection, first_rejection, is_reduce_only
from procs.executor.sizing import marketable_limit
from shared.log import event, log_every

CANCEL_RESEND_SECONDS = 10.0
HALT_CANCEL_RESEND_SECONDS = (
    2.0  # while halted (or flattening), a cancel is repeated until the broker confirms
)


class OrderDesk:
    """New orders, cancels and refusals over the book and the ledger."""

    def __init__(self, book: Book, ledger: Ledger) -> None:
        self.book = book
        self._ledger = ledger

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
        b = self.book
        if symbol in b.blocked:
            ours, theirs = b.blocked[symbol]
            return self.reject(symbol, Rejection(
                "mismatch", f"{symbol}: ledger {ours} but broker {theirs}; nothing is ordered until "
                f"`bin/trader accept-broker {symbol} --reason ...`"))  # fmt: skip
        intent = self._intent(symbol, side, quantity)
        if isinstance(intent, Rejection):
            return self.reject(symbol, intent)
        rejection = first_rejection(intent, b.risk_context(symbol, operator=operator), b.limits)
        if rejection is not None:
            return self.reject(symbol, rejection)
        now = b.wall()
        quote = b.quotes.get(symbol)
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
        self._ledger.insert_order(order)
        b.recent_orders.append(b.mono())
        b.breaker.order_sent()
        b.count("orders")
        event("order_new", client_order_id=order.client_order_id, symbol=symbol, side=side, quantity=quantity,
              order_type=order.order_type, limit=order.limit_price, reduce_only=order.reduce_only)  # fmt: skip
        return [Send(order), Publish("order.new", order_event(order))]

    def _intent(
        self, symbol: str, side: Literal["BUY", "SELL"], quantity: Decimal
    ) -> OrderIntent | Rejection:
        b = self.book
        working = b.working_shares(symbol)
        reduce = is_reduce_only(side, quantity, b.position(symbol) + working)
        broker = b.broker_positions.get(symbol)
        # the broker's position is the truth: reduce-only must hold there too, on its own (its fills in flight
        # are already in it)
        if broker is not None:
            reduce = reduce and is_reduce_only(side, quantity, broker)
        if b.settings.order_type == "MKT" or (
            reduce and b.farm_down and b.settings.farm_down_pricing == "market"
        ):
            return OrderIntent(symbol, side, quantity, "MKT", None, reduce)
        quote = b.quotes.get(symbol)
        if quote is None or quote.reference <= 0:
            return Rejection("quote", f"no quote for {symbol}: cannot price the order")
        tick = b.ticks.get(symbol)
        if tick is None:
            return Rejection(
                "contract", f"minimum tick of {symbol} unknown (no contract details from the bridge)"
            )
        limit = marketable_limit(side, quote, b.limits.price_collar_bps, tick)
        return OrderIntent(symbol, side, quantity, "LMT", limit, reduce)

    def cancel_orders(
        self, orders: list[OrderRecord], why: str, resend_seconds: float = CANCEL_RESEND_SECONDS
    ) -> list[Action]:
        """Cancel each working order, unless its cancel went out less than `resend_seconds` ago."""
        b = self.book
        now = b.mono()
        actions: list[Action] = []
        for o in orders:
            last = b.cancel_sent.get(o.client_order_id, 0)
            if o.working and now - last > resend_seconds * 1e9:
                b.cancel_sent[o.client_order_id] = now
                event("order_cancel", client_order_id=o.client_order_id, symbol=o.symbol, why=repr(why))
                actions.append(Cancel(o.client_order_id))
        return actions

    def expire_orders(self) -> list[Action]:
        """Cancel working orders older than ORDER_TIMEOUT_SECONDS."""
        b = self.book
        timeout = b.settings.order_timeout_seconds
        old = [
            o
            for o in self._ledger.working.values()
            if may_expire(o) and b.age_s(o.client_order_id, o.created_ns) > timeout
        ]
        return self.cancel_orders(old, f"working longer than {timeout:g}s") if old else []

    def reject(self, symbol: str, rejection: Rejection) -> list[Action]:
        """Count and log a refused order (no action: nothing goes out)."""
        self.book.count(f"rejected_{rejection.rule}")
        self.book.last_rejection = f"{symbol} {rejection}"
        log_every(
            f"reject.{rejection.rule}.{symbol}", 30, "WARNING", f"order for {symbol} rejected by {rejection}"
        )
        return []

    def may_send(self, o: OrderRecord) -> Rejection | None:
        """Whether an order already in the ledger may still go out (a resend, or a send decided before a halt):
        every risk check again, with the order itself no longer counted as working."""
        b = self.book
        if o.symbol in b.blocked:
            return Rejection("mismatch", f"{o.symbol}: ledger and broker disagree")
        if b.halt.halted and not o.reduce_only:
            return Rejection("halted", f"trading is halted ({b.halt.reason})")
        intent = OrderIntent(o.symbol, o.side, o.quantity, o.order_type, o.limit_price, o.reduce_only)
        ctx = b.risk_context(o.symbol, operator=o.reduce_only, excluding=o.client_order_id)
        return first_rejection(intent, ctx, b.limits)
