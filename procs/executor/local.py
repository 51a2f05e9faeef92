"""EXECUTION=local: paper fills inside the executor against live quotes, with slippage and an IB-like commission.

It stands where the broker stands: it takes the same orders and answers with the same OrderEvent and Fill
messages, which go through the same ledger path as a real broker's. It never sends anything to the Gateway.
A marketable order fills whole at the touch moved against us by LOCAL_SLIPPAGE_BPS; a limit that the slipped
price does not meet rests until a quote does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal

from procs.executor.orders import OrderRecord
from procs.executor.sizing import BPS, QuoteSnapshot, round_to_tick
from shared.messages import Fill, OrderEvent, OrderStatusName

MIN_COMMISSION = Decimal("1.00")
MAX_COMMISSION_RATE = Decimal("0.01")  # IB fixed pricing: never more than 1% of the trade value

LocalEvent = OrderEvent | Fill


def ib_commission(quantity: Decimal, price: Decimal, per_share: Decimal) -> Decimal:
    """IB's fixed US-stock pricing: per share, at least 1.00, at most 1% of the trade value."""
    fee = max(MIN_COMMISSION, quantity * per_share)
    return min(fee, quantity * price * MAX_COMMISSION_RATE)


def slipped_price(side: str, quote: QuoteSnapshot, slippage_bps: Decimal, tick: Decimal) -> Decimal:
    """The touch moved against the order by the slippage, in whole ticks (up to buy, down to sell)."""
    touch = quote.touch("BUY" if side == "BUY" else "SELL")
    if side == "BUY":
        return round_to_tick(touch * (1 + slippage_bps / BPS), tick, "up")
    return round_to_tick(touch * (1 - slippage_bps / BPS), tick, "down")


class LocalBroker:
    def __init__(
        self, slippage_bps: Decimal, commission_per_share: Decimal, ticks: Mapping[str, Decimal]
    ) -> None:
        self.slippage_bps = slippage_bps
        self.commission_per_share = commission_per_share
        self.ticks = ticks
        self.resting: dict[str, OrderRecord] = {}
        self._next_id = 1

    def restore(self, orders: list[OrderRecord]) -> None:
        """After a restart: the ledger's working orders rest again (fills already booked stay booked)."""
        for o in orders:
            if o.working and o.filled < o.quantity:
                self.resting[o.client_order_id] = o

    def place(
        self, order: OrderRecord, quote: QuoteSnapshot | None, now_ns: int | None = None
    ) -> list[LocalEvent]:
        events: list[LocalEvent] = [self._status(order, "SUBMITTED")]
        self.resting[order.client_order_id] = order
        if quote is not None:
            events += self._try_fill(order, quote, now_ns or time.time_ns())
        return events

    def cancel(self, client_order_id: str) -> list[LocalEvent]:
        order = self.resting.pop(client_order_id, None)
        return [] if order is None else [self._status(order, "CANCELLED", reason="cancelled")]

    def on_quote(self, symbol: str, quote: QuoteSnapshot, now_ns: int | None = None) -> list[LocalEvent]:
        events: list[LocalEvent] = []
        for order in [o for o in self.resting.values() if o.symbol == symbol]:
            events += self._try_fill(order, quote, now_ns or time.time_ns())
        return events

    def _try_fill(self, order: OrderRecord, quote: QuoteSnapshot, now_ns: int) -> list[LocalEvent]:
        tick = self.ticks.get(order.symbol, Decimal("0.01"))
        if quote.reference <= 0:
            return []
        price = slipped_price(order.side, quote, self.slippage_bps, tick)
        if order.limit_price is not None:
            beyond = price > order.limit_price if order.side == "BUY" else price < order.limit_price
            if beyond:
                return []
        quantity = order.quantity - order.filled
        self.resting.pop(order.client_order_id, None)
        fill = Fill(
            exec_id=f"local-{order.client_order_id}-{self._next_id}",
            client_order_id=order.client_order_id,
            order_id=0,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            commission=ib_commission(quantity, price, self.commission_per_share),
            exec_ns=now_ns,
        )
        self._next_id += 1
        return [fill, self._status(order, "FILLED", filled=order.quantity, price=price)]

    @staticmethod
    def _status(
        order: OrderRecord,
        status: OrderStatusName,
        *,
        filled: Decimal | None = None,
        price: Decimal = Decimal(0),
        reason: str = "",
    ) -> OrderEvent:
        done = order.filled if filled is None else filled
        return OrderEvent(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            limit_price=order.limit_price,
            status=status,
            filled=done,
            remaining=order.quantity - done,
            avg_fill_price=price,
            reason=reason,
        )
