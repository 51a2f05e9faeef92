"""What a program may rely on from the bus, whichever carries it: ZeroMQ (production, integration tests) or memory
(unit tests). Typing only: it must never hold behaviour.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from shared.bus.subscribe import Received, StreamStats
from shared.messages import Message, Reply, Request


class BusPublisher(Protocol):
    source: str
    epoch: str
    seq: int
    stream_seqs: dict[str, int]

    def publish(self, topic: str, msg: Message) -> Message: ...

    def close(self) -> None: ...


class BusSubscriber(Protocol):
    stats: StreamStats

    async def recv(self, timeout: float | None = None) -> Received | None: ...

    def recv_nowait(self) -> Received | None: ...

    def close(self) -> None: ...


class BusClient(Protocol):
    async def request(
        self, req: Request, *, timeout: float | None = None, idempotent: bool = True
    ) -> Reply: ...

    async def call(self, req: Request, *, timeout: float | None = None, idempotent: bool = True) -> Any: ...

    async def ask(self, req: Request, *, timeout: float | None = None, idempotent: bool = True) -> Any: ...

    def close(self) -> None: ...


class BusServer(Protocol):
    malformed: int
    served: int

    async def serve(self, stop: asyncio.Event) -> None: ...

    def take_waiting(self) -> int: ...

    def close(self) -> None: ...
