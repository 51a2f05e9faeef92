"""The wire contract between the programs: frozen, tagged msgspec Structs, msgpack on the wire.

Every published message carries the envelope (source, epoch, seq, ts_ns); the publisher stamps it, so
code that builds a message leaves those fields at their defaults. Money is Decimal; features are floats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="kind"):
    """Base of every published message: the envelope, stamped by the Publisher."""

    source: str = ""
    epoch: str = ""
    seq: int = 0
    ts_ns: int = 0
    # +1 per message of the same stream (the topic up to its first dot: bar, quote, order, fill...), so a subscriber
    # that takes whole streams (`bar.`, `gateway`) and nothing else still sees every gap in them
    stream_seq: int = 0


# ---------------------------------------------------------------- streams (PUB/SUB)


class Bar(Message, frozen=True, kw_only=True):
    """One OHLCV bar; start_ns is the bar's opening time (UTC ns)."""

    symbol: str
    start_ns: int
    bar_seconds: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float = 0.0
    count: int = 0


class Quote(Message, frozen=True, kw_only=True):
    symbol: str
    bid: float
    ask: float
    last: float
    bid_size: float = 0.0
    ask_size: float = 0.0
    last_size: float = 0.0
    quote_ns: int = 0


GatewayStateName = Literal[
    "CONNECTING", "SYNCING", "READY", "DEGRADED", "STALLED", "DISCONNECTED", "WAITING_FOR_HUMAN", "STOPPED"
]


class GatewayStatus(Message, frozen=True, kw_only=True):
    """The bridge's state, published on every change with the reason and the human's remedy."""

    state: GatewayStateName
    reason: str = ""
    remedy: str = ""
    orders_allowed: bool = False
    data_degraded: bool = False
    server_version: int = 0
    client_id: int = 0
    accounts: list[str] = []  # masked
    gateway_time_ns: int = 0  # the Gateway's clock (the simulator's clock when GATEWAY=sim)


OrderStatusName = Literal[
    "NEW", "SUBMITTED", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "INACTIVE", "PENDING_CANCEL"
]


class OrderEvent(Message, frozen=True, kw_only=True):
    """An order's state as the bridge (broker) or executor sees it; topic `order.<status lowercase>`."""

    client_order_id: str
    order_id: int = 0
    perm_id: int = 0
    symbol: str = ""
    side: Literal["BUY", "SELL"] = "BUY"
    quantity: Decimal = Decimal(0)
    order_type: str = "LMT"
    limit_price: Decimal | None = None
    status: OrderStatusName
    ib_status: str = ""  # IB's own status word (Submitted, PreSubmitted, ...)
    filled: Decimal = Decimal(0)
    remaining: Decimal = Decimal(0)
    avg_fill_price: Decimal = Decimal(0)
    reason: str = ""
    error_code: int = 0
    # False: a terminal status that only the client library asserted (ib_async marks an order Cancelled on any
    # order-scoped error, informational ones included); the Gateway's open-order list decides, not this event
    confirmed: bool = True
    stop_price: Decimal | None = None  # a stop's live trigger (a TRAIL's as it has trailed); None: not a stop


class Fill(Message, frozen=True, kw_only=True):
    """One execution, identified by exec_id; applied exactly once by whoever keeps a ledger."""

    exec_id: str
    client_order_id: str  # the IB orderRef
    order_id: int = 0
    perm_id: int = 0
    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: Decimal
    price: Decimal
    commission: Decimal | None = None
    exec_ns: int = 0
    account: str = ""  # masked when published


class Position(Message, frozen=True, kw_only=True):
    """One holding per contract: a symbol alone does not identify it (an option on AAPL is not AAPL stock)."""

    account: str = ""  # masked
    symbol: str
    quantity: Decimal
    avg_cost: Decimal = Decimal(0)
    sec_type: str = "STK"  # STK, OPT, FUT, CASH, ...
    con_id: int = 0
    currency: str = ""
    local_symbol: str = ""  # e.g. an option's OCC symbol, or EUR.USD


class AccountValue(Message, frozen=True, kw_only=True):
    account: str = ""  # masked
    tag: str
    value: str
    currency: str = ""


class FeatureVector(Message, frozen=True, kw_only=True):
    """Features of one symbol at the close of one bar (end_ns = bar start + bar_seconds)."""

    symbol: str
    end_ns: int
    bar_seconds: int
    close: float
    warm: bool
    values: dict[str, float]


class TargetPosition(Message, frozen=True, kw_only=True):
    """What the strategy wants held: weight in [-1, 1] of POSITION_NOTIONAL, with the reason in words."""

    symbol: str
    weight: float
    reason: str
    strategy: str
    feature_end_ns: int
    price: float = 0.0  # the close the decision was made on


class Heartbeat(Message, frozen=True, kw_only=True):
    """Published by every program every HEARTBEAT_SECONDS; the watchdog restarts programs that go silent."""

    program: str
    pid: int
    state: str
    started_ns: int
    counters: dict[str, float] = {}
    detail: dict[str, Any] = {}


class Alert(Message, frozen=True, kw_only=True):
    severity: Literal["INFO", "WARNING", "CRITICAL"]
    code: str
    message: str
    remedy: str = ""
    evidence: dict[str, Any] = {}


class RiskState(Message, frozen=True, kw_only=True):
    halted: bool
    halt_reason: str = ""
    circuit_open: bool = False
    daily_pnl: Decimal = Decimal(0)
    gross_exposure: Decimal = Decimal(0)


Published = (
    Bar
    | Quote
    | GatewayStatus
    | OrderEvent
    | Fill
    | Position
    | AccountValue
    | FeatureVector
    | TargetPosition
    | Heartbeat
    | Alert
    | RiskState
)


# ---------------------------------------------------------------- requests (REQ -> ROUTER)


class Request(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="kind"):
    """Base of every request; req_id is set by the RequestClient and echoed in the Reply."""

    req_id: str = ""


class HealthRequest(Request, frozen=True, kw_only=True):
    pass


class ContractRequest(Request, frozen=True, kw_only=True):
    symbol: str


class HistoryRequest(Request, frozen=True, kw_only=True):
    symbol: str
    bar_seconds: int = 60
    duration_seconds: int = 86_400
    end_ns: int = 0  # 0 = now
    use_rth: bool = False


class PlaceOrder(Request, frozen=True, kw_only=True):
    """Idempotent by client_order_id: placing the same id twice gives one order at the Gateway."""

    client_order_id: str
    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: Decimal
    order_type: Literal["LMT", "MKT", "STP", "TRAIL"] = "LMT"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None  # STP: the trigger; TRAIL: the initial trigger (optional)
    tif: Literal["DAY", "GTC", "IOC"] = "DAY"
    trailing_percent: Decimal | None = None  # TRAIL only: the trigger trails the best price by this percent
    outside_rth: bool = False  # may trigger and fill outside regular trading hours
    oca_group: str = ""  # IB one-cancels-all group (ocaType 3: a fill reduces the others)


class CancelOrder(Request, frozen=True, kw_only=True):
    client_order_id: str


class ModifyOrder(Request, frozen=True, kw_only=True):
    """IB's modify: the working order of `client_order_id` placed again under its own order id with a new size."""

    client_order_id: str
    quantity: Decimal


class OpenOrdersRequest(Request, frozen=True, kw_only=True):
    pass


class ExecutionsRequest(Request, frozen=True, kw_only=True):
    since_ns: int = 0


class PositionsRequest(Request, frozen=True, kw_only=True):
    pass


class AccountRequest(Request, frozen=True, kw_only=True):
    pass


# executor's operator commands (bin/trader)
class StatusRequest(Request, frozen=True, kw_only=True):
    pass


class OrdersRequest(Request, frozen=True, kw_only=True):
    include_done: bool = False


class HaltRequest(Request, frozen=True, kw_only=True):
    reason: str = "halted by operator"


class ResumeRequest(Request, frozen=True, kw_only=True):
    pass


class FlattenRequest(Request, frozen=True, kw_only=True):
    symbols: list[str] = []  # empty: every traded symbol


class ReconcileRequest(Request, frozen=True, kw_only=True):
    """bin/trader reconcile: ledger and broker side by side, per symbol (read-only)."""


class AcceptBrokerRequest(Request, frozen=True, kw_only=True):
    """bin/trader accept-broker: set the ledger's position in `symbol` to the broker's, with an audit row."""

    symbol: str
    reason: str
    operator: str = ""  # who (the CLI sends the OS user)


BridgeRequest = (
    HealthRequest
    | ContractRequest
    | HistoryRequest
    | PlaceOrder
    | CancelOrder
    | ModifyOrder
    | OpenOrdersRequest
    | ExecutionsRequest
    | PositionsRequest
    | AccountRequest
)

ExecutorRequest = (
    StatusRequest
    | PositionsRequest
    | OrdersRequest
    | HaltRequest
    | ResumeRequest
    | FlattenRequest
    | ReconcileRequest
    | AcceptBrokerRequest
    | HealthRequest
)


# monitor's operator commands (bin/trader alerts, bin/trader test-alert): read-only, never about orders
class AlertsRequest(Request, frozen=True, kw_only=True):
    """bin/trader alerts: the most recent alerts, newest last, with what became of each."""

    limit: int = 20


class SendTestAlertRequest(Request, frozen=True, kw_only=True):
    """bin/trader test-alert: one message through every configured sink now; the answer says which succeeded."""

    message: str = "test alert from the trading stack"


MonitorRequest = AlertsRequest | SendTestAlertRequest | HealthRequest


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to one request. `result` holds plain data (Structs are encoded as maps)."""

    req_id: str
    ok: bool
    error: str = ""
    result: Any = None


# ---------------------------------------------------------------- reply payloads


class ContractInfo(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    con_id: int
    exchange: str
    primary_exchange: str
    currency: str
    min_tick: Decimal
    long_name: str = ""
    time_zone_id: str = ""
    trading_hours: str = ""
    liquid_hours: str = ""


class OrderAck(msgspec.Struct, frozen=True, kw_only=True):
    client_order_id: str
    order_id: int
    status: OrderStatusName
    duplicate: bool = False  # true when this client order id was already placed


class HealthReport(msgspec.Struct, frozen=True, kw_only=True):
    program: str
    state: str
    reason: str = ""
    remedy: str = ""
    server_version: int = 0
    client_id: int = 0
    accounts: list[str] = []  # masked
    heartbeat_rtt_ms: float | None = None
    last_heartbeat_age_s: float | None = None
    last_bar_age_s: float | None = None
    subscriptions: int = 0
    connected_since_ns: int = 0
    reconnects: int = 0
    gateway_time_ns: int = 0
    counters: dict[str, float] = {}
