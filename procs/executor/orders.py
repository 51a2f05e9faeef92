"""The life of one order: its record, and the state machine every reported status goes through (pure).

It decides whether a status moves an order forward, is stale (an out-of-order callback: tolerated, ignored)
or impossible (refused; the caller logs it). It never talks to a broker or a database.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from shared.messages import OrderStatusName

AVG_PLACES = Decimal("1e-8")
CLIENT_ORDER_PREFIX = "ex-"  # every orderRef the executor creates starts with this: ours vs a human's

# INACTIVE is not final at IB (outside hours, awaiting a locate): the order may work again, or be cancelled later
TERMINAL: frozenset[OrderStatusName] = frozenset({"FILLED", "CANCELLED", "REJECTED"})
WORKING: frozenset[OrderStatusName] = frozenset(
    {"NEW", "SUBMITTED", "PARTIALLY_FILLED", "PENDING_CANCEL", "INACTIVE"}
)
ADOPTED = "adopted"  # the `why` of an order of ours that the ledger learnt from the broker

# How far along an order is; a report ranked below the current state is a late (stale) callback.
_RANK: dict[OrderStatusName, int] = {
    "NEW": 0,
    "SUBMITTED": 1,
    "PARTIALLY_FILLED": 2,
    "PENDING_CANCEL": 2,
    "INACTIVE": 1,
    "FILLED": 3,
    "CANCELLED": 3,
    "REJECTED": 3,
}

_ALLOWED: dict[OrderStatusName, frozenset[OrderStatusName]] = {
    "NEW": frozenset(
        {"SUBMITTED", "PARTIALLY_FILLED", "PENDING_CANCEL", "FILLED", "CANCELLED", "REJECTED", "INACTIVE"}
    ),
    "SUBMITTED": frozenset(
        {"PARTIALLY_FILLED", "PENDING_CANCEL", "FILLED", "CANCELLED", "REJECTED", "INACTIVE"}
    ),
    # after a fill an order can no longer be rejected: a REJECTED report then is impossible
    "PARTIALLY_FILLED": frozenset({"PENDING_CANCEL", "FILLED", "CANCELLED", "INACTIVE"}),
    # a refused cancel sends the order back to working
    "PENDING_CANCEL": frozenset({"SUBMITTED", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "INACTIVE"}),
    "INACTIVE": frozenset(
        {"SUBMITTED", "PARTIALLY_FILLED", "PENDING_CANCEL", "FILLED", "CANCELLED", "REJECTED"}
    ),
    "FILLED": frozenset(),
    "CANCELLED": frozenset(),
    "REJECTED": frozenset(),
}

Outcome = Literal["moved", "same", "stale", "impossible"]


@dataclass(frozen=True, slots=True)
class Transition:
    state: OrderStatusName
    outcome: Outcome

    @property
    def changed(self) -> bool:
        return self.outcome == "moved"


def next_state(current: OrderStatusName, reported: OrderStatusName) -> Transition:
    """Where a reported status takes an order in `current`; stale and impossible reports leave it where it is."""
    if reported == current:
        return Transition(current, "same")
    if reported in _ALLOWED[current]:
        return Transition(reported, "moved")
    if current not in TERMINAL and _RANK[reported] <= _RANK[current]:
        return Transition(current, "stale")
    if current in TERMINAL and reported not in TERMINAL:
        return Transition(current, "stale")  # e.g. a late Submitted after Filled
    return Transition(current, "impossible")  # e.g. Filled then Rejected, or Rejected after a fill


@dataclass(slots=True)
class OrderRecord:
    """One order as the ledger keeps it. `filled` counts only fills applied here (by exec_id)."""

    client_order_id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: Decimal
    order_type: Literal["LMT", "MKT"]
    limit_price: Decimal | None
    status: OrderStatusName = "NEW"
    filled: Decimal = Decimal(0)
    reported_filled: Decimal = Decimal(0)  # the broker's cumulative figure, may run ahead of our fills
    avg_fill_price: Decimal = Decimal(0)
    broker_order_id: int = 0
    perm_id: int = 0
    reason: str = ""
    error_code: int = 0
    reduce_only: bool = False
    created_ns: int = 0
    updated_ns: int = 0
    sent_ns: int = 0  # when PlaceOrder was first attempted; 0 = never sent
    decided_on_ns: int = 0  # end of the bar whose target this order answers (0: not a fresh target)
    why: str = ""  # the strategy's reason, or what else made the executor trade
    # a final status only the client library asserted (CANCELLED, REJECTED): not applied until the broker's
    # open-order list no longer holds the order; "" when none is pending
    unconfirmed: str = ""
    decision_quote: Decimal | None = None  # the quote's reference price when it was decided (None: unknown)

    @property
    def working(self) -> bool:
        return self.status in WORKING

    @property
    def sign(self) -> int:
        return 1 if self.side == "BUY" else -1

    def pending(self) -> Decimal:
        """Shares expected but not yet booked: the rest of a working order, or fills still in flight."""
        if self.status in WORKING:
            return max(Decimal(0), self.quantity - self.filled)
        if self.status == "FILLED":
            # done at the broker: its fills may still be on their way, up to the whole quantity -- or up to less,
            # when a correction lowered what the broker says filled in all
            done = self.reported_filled if 0 < self.reported_filled < self.quantity else self.quantity
            return max(Decimal(0), done - self.filled)
        return max(Decimal(0), self.reported_filled - self.filled)

    def signed_pending(self) -> Decimal:
        return self.pending() * self.sign


def apply_fill_quantity(order: OrderRecord, quantity: Decimal, price: Decimal) -> None:
    """Add one fill to the order's own totals; the status follows the booked quantity."""
    total = order.filled + quantity
    # an average is derived, not money moved: 8 places keep it readable and stable in the ledger
    order.avg_fill_price = ((order.avg_fill_price * order.filled + price * quantity) / total).quantize(
        AVG_PLACES
    )
    order.filled = total
    order.reported_filled = max(order.reported_filled, total)
    if total >= order.quantity:
        order.status = "FILLED"  # fills are the truth, whatever the last status callback said
    elif order.status in ("NEW", "SUBMITTED"):
        order.status = "PARTIALLY_FILLED"


def may_expire(order: OrderRecord) -> bool:
    """An order the broker holds as working: cancelled once it is older than ORDER_TIMEOUT_SECONDS (its age is
    measured by the caller, on a monotonic clock)."""
    return order.status in ("SUBMITTED", "PARTIALLY_FILLED", "INACTIVE")


def new_client_order_id(symbol: str, now_ns: int | None = None) -> str:
    """Unique across restarts and readable by a human: ex-<utc time>-<symbol>-<random>."""
    now = time.time_ns() if now_ns is None else now_ns
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now / 1e9))
    return f"{CLIENT_ORDER_PREFIX}{stamp}-{symbol}-{os.urandom(4).hex()}"


def is_ours(client_order_id: str) -> bool:
    return client_order_id.startswith(CLIENT_ORDER_PREFIX)
