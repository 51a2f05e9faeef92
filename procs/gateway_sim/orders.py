"""The simulator's order, execution and broker-event values: what the broker hands the server to put on the wire.

Plain data only; it must never hold behaviour beyond derived properties.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from procs.gateway_sim.contracts import SimContract

ZERO = Decimal(0)

WORKING = frozenset({"PendingSubmit", "PreSubmitted", "Submitted"})


@dataclass(slots=True)
class SimOrder:
    """What the sim knows of one order. The broker keeps its own copy; events carry snapshots."""

    order_id: int
    client_id: int
    perm_id: int
    account: str
    symbol: str
    con_id: int
    action: str  # BUY / SELL
    total_qty: Decimal
    order_type: str  # MKT, LMT, STP, STP LMT
    lmt_price: Decimal | None
    aux_price: Decimal | None  # the stop price
    tif: str
    order_ref: str
    status: str = "PendingSubmit"  # PendingSubmit, PreSubmitted, Submitted, Filled, Cancelled, Inactive
    filled: Decimal = ZERO
    avg_fill_price: Decimal = ZERO
    last_fill_price: Decimal = ZERO
    why_held: str = ""
    triggered: bool = False  # a stop whose stop price has traded: it now works as MKT / LMT
    filled_value: Decimal = ZERO
    commission: Decimal = ZERO  # charged so far on this order
    placed_ns: int = 0
    trailing_pct: Decimal | None = None  # TRAIL: the trigger trails the best price since placement by this
    oca_group: str = ""  # ocaType 3: a fill here reduces every other working order of the group
    outside_rth: bool = False

    @property
    def remaining(self) -> Decimal:
        return self.total_qty - self.filled

    @property
    def is_working(self) -> bool:
        return self.status in WORKING


@dataclass(frozen=True, slots=True)
class SimExecution:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    account: str
    symbol: str
    con_id: int
    side: str  # BOT / SLD
    shares: Decimal
    price: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    time_ns: int
    order_ref: str
    commission: Decimal
    exchange: str = "SMART"
    realized_pnl: Decimal = ZERO  # of this fill, net of commissions; 0 when it opened or added


@dataclass(frozen=True)
class OrderChanged:
    order: SimOrder


@dataclass(frozen=True)
class Executed:
    execution: SimExecution


@dataclass(frozen=True)
class PositionChanged:
    account: str
    symbol: str
    con_id: int
    position: Decimal
    avg_cost: Decimal
    # an untraded holding's own contract (an option, a currency); None: the stock `symbol` the simulator trades
    contract: SimContract | None = None


@dataclass(frozen=True)
class AccountChanged:
    account: str


@dataclass(frozen=True)
class OrderRejected:
    order_id: int
    code: int
    message: str


SimEvent = OrderChanged | Executed | PositionChanged | AccountChanged | OrderRejected
