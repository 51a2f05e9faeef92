"""Where a program gets its sockets: one Bus that makes publishers, subscribers, request clients and servers.

A program asks `svc.bus` for its sockets and never names ZeroMQ: production and integration tests hand it a
ZmqBus (real sockets on ipc:// or inproc://), unit tests a MemoryBus (the same code paths, inside one process).
A request server takes what the contract says its program serves (shared/contract.py SERVED), so adding a
request is one line there, not an edit of every server.

It must never hold behaviour of its own: every socket it makes is the one the bus package defines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import zmq.asyncio

from shared.bus.interface import BusClient, BusPublisher, BusServer, BusSubscriber
from shared.bus.memory import (
    MemoryHub,
    MemoryPublisher,
    MemoryRequestClient,
    MemoryRequestServer,
    MemorySubscriber,
)
from shared.bus.publish import Publisher
from shared.bus.requests import Handler, QuickHandler, RequestClient, RequestServer
from shared.bus.subscribe import Subscriber
from shared.contract import served_union


class Bus(Protocol):
    """The four kinds of socket a program uses, by endpoint (shared.bus.endpoints names them)."""

    def publisher(self, ep: str, source: str) -> BusPublisher: ...

    def subscriber(self, endpoints: Sequence[str], prefixes: Sequence[str]) -> BusSubscriber: ...

    def client(self, ep: str, *, timeout: float = 2.0, retries: int = 2) -> BusClient: ...

    def server(
        self,
        ep: str,
        program: str,
        handler: Handler,
        quick: QuickHandler | None = None,
        *,
        serves: Any = None,
    ) -> BusServer: ...

    def close(self) -> None: ...


def _serves(program: str, serves: Any) -> Any:
    # a server decodes what the contract says its program serves; tests' stand-ins may name their own union
    return served_union(program) if serves is None else serves


class ZmqBus:
    """The ZeroMQ bus on one context (the harness owns the context and destroys it at exit)."""

    def __init__(self, ctx: zmq.asyncio.Context) -> None:
        self.ctx = ctx

    def publisher(self, ep: str, source: str) -> BusPublisher:
        return Publisher(self.ctx, ep, source)

    def subscriber(self, endpoints: Sequence[str], prefixes: Sequence[str]) -> BusSubscriber:
        return Subscriber(self.ctx, endpoints, prefixes)

    def client(self, ep: str, *, timeout: float = 2.0, retries: int = 2) -> BusClient:
        return RequestClient(self.ctx, ep, timeout=timeout, retries=retries)

    def server(
        self,
        ep: str,
        program: str,
        handler: Handler,
        quick: QuickHandler | None = None,
        *,
        serves: Any = None,
    ) -> BusServer:
        return RequestServer(self.ctx, ep, _serves(program, serves), handler, quick)

    def close(self) -> None:
        """Nothing of its own: the context's owner destroys it with every socket."""


class MemoryBus:
    """The in-memory bus on one hub: every program of a unit test shares it, as they would share a machine."""

    def __init__(self, hub: MemoryHub | None = None) -> None:
        self.hub = hub or MemoryHub()

    def publisher(self, ep: str, source: str) -> BusPublisher:
        return MemoryPublisher(self.hub, ep, source)

    def subscriber(self, endpoints: Sequence[str], prefixes: Sequence[str]) -> BusSubscriber:
        return MemorySubscriber(self.hub, endpoints, prefixes)

    def client(self, ep: str, *, timeout: float = 2.0, retries: int = 2) -> BusClient:
        return MemoryRequestClient(self.hub, ep, timeout=timeout, retries=retries)

    def server(
        self,
        ep: str,
        program: str,
        handler: Handler,
        quick: QuickHandler | None = None,
        *,
        serves: Any = None,
    ) -> BusServer:
        return MemoryRequestServer(self.hub, ep, _serves(program, serves), handler, quick)

    def close(self) -> None:
        self.hub.destroy()
