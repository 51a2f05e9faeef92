"""The message bus: numbered PUB/SUB streams and Lazy-Pirate requests, msgspec on the wire, typed by
shared/contract.py.

Split by role: endpoints (names, context, topics), publish, subscribe, requests; memory is the in-memory bus with
the same behaviour for unit tests, interface the Protocols both satisfy. Endpoints are ipc:// sockets under
var/run/ in production and inproc:// in unit tests. Sockets use LINGER 0 so a stopping process never hangs; a
malformed frame is counted, logged (rate-limited) and dropped, never raised into the caller's loop.

Every name code imported from the one-module shared/bus.py is still importable from here.
"""

from __future__ import annotations

from shared.bus.endpoints import (
    HWM,
    PUB_SOCKETS,
    REQ_SOCKETS,
    endpoint,
    new_context,
    pub_endpoint,
    req_endpoint,
    stream_of,
    topic_matches,
)
from shared.bus.interface import BusClient, BusPublisher, BusServer, BusSubscriber
from shared.bus.memory import (
    MemoryHub,
    MemoryPublisher,
    MemoryRequestClient,
    MemoryRequestServer,
    MemorySubscriber,
)
from shared.bus.publish import Publisher
from shared.bus.readiness import Readiness
from shared.bus.requests import (
    AnswerLater,
    Handler,
    QuickHandler,
    RequestClient,
    RequestError,
    RequestFailed,
    RequestServer,
    RequestTimeout,
    request_once,
)
from shared.bus.subscribe import Received, StreamStats, Subscriber
from shared.contract import ContractError

__all__ = [
    "HWM",
    "PUB_SOCKETS",
    "REQ_SOCKETS",
    "AnswerLater",
    "BusClient",
    "BusPublisher",
    "BusServer",
    "BusSubscriber",
    "ContractError",
    "Handler",
    "MemoryHub",
    "MemoryPublisher",
    "MemoryRequestClient",
    "MemoryRequestServer",
    "MemorySubscriber",
    "Publisher",
    "QuickHandler",
    "Readiness",
    "Received",
    "RequestClient",
    "RequestError",
    "RequestFailed",
    "RequestServer",
    "RequestTimeout",
    "StreamStats",
    "Subscriber",
    "endpoint",
    "new_context",
    "pub_endpoint",
    "req_endpoint",
    "request_once",
    "stream_of",
    "topic_matches",
]
