"""The bus contract, declared once: which message type each stream carries and what each request is answered with.

Adding a message is its Struct in shared/messages.py plus one line here (STREAMS for a published message, REPLIES
for a request). The subscribers' decoder is built from STREAMS, so a message in the table is never dropped as
malformed; the Publisher checks a topic against it (strict in tests: BUS_STRICT=1 raises on a mistyped message).

It must never import the bus or any program: everything that speaks on the bus reads this table, not the reverse.
"""

from __future__ import annotations

import os
from typing import Any, Union

import msgspec

from shared.messages import (
    AcceptBrokerRequest,
    AccountRequest,
    AccountValue,
    Alert,
    AlertsRequest,
    Bar,
    CancelOrder,
    ContractInfo,
    ContractRequest,
    ExecutionsRequest,
    FeatureVector,
    Fill,
    FlattenRequest,
    GatewayStatus,
    HaltRequest,
    HealthReport,
    HealthRequest,
    Heartbeat,
    HistoryRequest,
    Message,
    ModifyOrder,
    OpenOrdersRequest,
    OrderAck,
    OrderEvent,
    OrdersRequest,
    PlaceOrder,
    Position,
    PositionsRequest,
    Quote,
    ReconcileRequest,
    Request,
    ResumeRequest,
    RiskState,
    SendTestAlertRequest,
    StatusRequest,
    TargetPosition,
)

# stream (the topic up to its first dot: `bar.AAPL` -> `bar`) -> the one message type it carries
STREAMS: dict[str, type[Message]] = {
    "bar": Bar,  # bar.<SYMBOL>, from the bridge
    "quote": Quote,  # quote.<SYMBOL>, from the bridge
    "gateway": GatewayStatus,  # the bridge's state
    "order": OrderEvent,  # order.<status>, from the bridge (broker) and the executor
    "fill": Fill,
    "position": Position,
    "account": AccountValue,
    "feat": FeatureVector,  # feat.<SYMBOL>, from features
    "target": TargetPosition,  # target.<SYMBOL>, from the strategy
    "heartbeat": Heartbeat,  # heartbeat.<program>, from every program
    "alert": Alert,
    "risk": RiskState,  # from the executor
}

# request type -> what its reply's `result` holds (operator commands answer a plain map for the terminal)
REPLIES: dict[type[Request], Any] = {
    HealthRequest: HealthReport,
    ContractRequest: ContractInfo,
    HistoryRequest: list[Bar],
    PlaceOrder: OrderAck,
    CancelOrder: OrderAck,
    ModifyOrder: OrderAck,
    OpenOrdersRequest: list[OrderEvent],
    ExecutionsRequest: list[Fill],
    PositionsRequest: Any,  # the bridge: list[Position]; the executor: its positions view (a map)
    AccountRequest: list[AccountValue],
    StatusRequest: dict[str, Any],
    OrdersRequest: Any,
    HaltRequest: dict[str, Any],
    ResumeRequest: dict[str, Any],
    FlattenRequest: dict[str, Any],
    ReconcileRequest: Any,
    AcceptBrokerRequest: Any,
    AlertsRequest: Any,
    SendTestAlertRequest: Any,
}

# what each request server takes (its decoder's union)
SERVED: dict[str, tuple[type[Request], ...]] = {
    "bridge": (
        HealthRequest,
        ContractRequest,
        HistoryRequest,
        PlaceOrder,
        CancelOrder,
        ModifyOrder,
        OpenOrdersRequest,
        ExecutionsRequest,
        PositionsRequest,
        AccountRequest,
    ),
    "executor": (
        StatusRequest,
        PositionsRequest,
        OrdersRequest,
        HaltRequest,
        ResumeRequest,
        FlattenRequest,
        ReconcileRequest,
        AcceptBrokerRequest,
        HealthRequest,
    ),
    "monitor": (AlertsRequest, SendTestAlertRequest, HealthRequest),
}

# every published type as one tagged union, built from the table: what a subscriber decodes
PUBLISHED: Any = Union[tuple(dict.fromkeys(STREAMS.values()))]  # noqa: UP007 (built at run time from the table)


def served_union(program: str) -> Any:
    """The union of requests `program`'s server decodes (for RequestServer's request_type)."""
    return Union[SERVED[program]]  # noqa: UP007


class ContractError(TypeError):
    """A message published on a topic whose stream carries another type, or on a stream the contract lacks."""


def strict_from_env() -> bool:
    """BUS_STRICT=1 (the test suite sets it): a Publisher raises ContractError instead of sending a mistyped
    message. Off in production, where a stopped program costs more than one message a subscriber drops."""
    return os.environ.get("BUS_STRICT", "") not in ("", "0")


def stream_type(stream: str) -> type[Message] | None:
    """The type a stream carries, or None for a stream the contract does not know."""
    return STREAMS.get(stream)


def check_published(stream: str, msg: Message) -> None:
    """Raise ContractError unless `msg` is exactly the type `stream` carries."""
    expected = STREAMS.get(stream)
    if expected is None:
        raise ContractError(f"no stream {stream!r} in shared/contract.py STREAMS ({type(msg).__name__})")
    if type(msg) is not expected:
        raise ContractError(f"stream {stream!r} carries {expected.__name__}, not {type(msg).__name__}")


def reply_type(req: Request) -> Any:
    """What the reply to `req` holds (Any when the contract leaves it open)."""
    return REPLIES.get(type(req), Any)


def typed_result(req: Request, result: Any) -> Any:
    """A reply's plain `result` converted to the type the contract declares for `req` (Structs, lists of them)."""
    expected = reply_type(req)
    if expected is Any or result is None:
        return result
    return msgspec.convert(result, expected)
