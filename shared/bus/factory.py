"""Where a program gets its sockets: one Bus that makes publishers, subscribers, request clients and servers.

A program asks `svc.bus` for its sockets and never names ZeroMQ: production and integration tests hand it a
ZmqBus (real sockets on ipc:// or inproc://), unit tests a MemoryBus (the same code paths, inside one process).
A request server takes what the contract says its program serves (shared/contract.py SERVED), so adding a
request is one line there, not an edit of every server.

It must never hold behaviour of its own: every socket it makes is the one the bus package defines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

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


class _Transport:
    """One transport's four sockets, each made on what joins them (a zmq Context, a MemoryHub): the two buses
    differ in nothing else, so the constructors are all a subclass names."""

    _publisher: ClassVar[Callable[..., BusPublisher]]
    _subscriber: ClassVar[Callable[..., BusSubscriber]]
    _client: ClassVar[Callable[..., BusClient]]
    _server: ClassVar[Callable[..., BusServer]]

    def __init__(self, joint: Any) -> None:
        self._joint = joint

    def publisher(self, ep: str, source: str) -> BusPublisher:
        return type(self)._publisher(self._joint, ep, source)

    def subscriber(self, endpoints: Sequence[str], prefixes: Sequence[str]) -> BusSubscriber:
        return type(self)._subscriber(self._joint, endpoints, prefixes)

    def client(self, ep: str, *, timeout: float = 2.0, retries: int = 2) -> BusClient:
        return type(self)._client(self._joint, ep, timeout=timeout, retries=retries)

    def server(
        self,
        ep: str,
        program: str,
        handler: Handler,
        quick: QuickHandler | None = None,
        *,
        serves: Any = None,
    ) -> BusServer:
        # a server decodes what the contract says its program serves; tests' stand-ins may name their own union
        request_type = served_union(program) if serves is None else serves
        return type(self)._server(self._joint, ep, request_type, handler, quick)


class ZmqBus(_Transport):
    """The ZeroMQ bus on one context (the harness owns the context and destroys it at exit)."""

    _publisher, _subscriber, _client, _server = Publisher, Subscriber, RequestClient, RequestServer

    def __init__(self, ctx: zmq.asyncio.Context) -> None:
        super().__init__(ctx)
        self.ctx = ctx

    def close(self) -> None:
        """Nothing of its own: the context's owner destroys it with every socket."""


class MemoryBus(_Transport):
    """The in-memory bus on one hub: every program of a unit test shares it, as they would share a machine."""

    _publisher, _subscriber = MemoryPublisher, MemorySubscriber
    _client, _server = MemoryRequestClient, MemoryRequestServer

    def __init__(self, hub: MemoryHub | None = None) -> None:
        self.hub = hub or MemoryHub()
        super().__init__(self.hub)

    def close(self) -> None:
        self.hub.destroy()
