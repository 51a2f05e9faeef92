"""The in-memory bus: the same publishers, subscribers and request servers as the ZeroMQ bus, inside one process.

Messages still cross as msgpack bytes (the contract's decoder reads them, so a malformed or mistyped message is
dropped the same way), numbered and stamped by the same code; only the sockets are gone. For unit tests of a
program: it must never be used across processes, and it never touches the network or the file system.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

import msgspec

from shared.bus.endpoints import HWM
from shared.bus.publish import ENCODER, Stamper
from shared.bus.requests import (
    REPLY_DECODER,
    Calls,
    Handler,
    QuickHandler,
    RequestTimeout,
    ServerCore,
)
from shared.bus.subscribe import Received, Sequencer
from shared.messages import Message, Reply, Request


class MemoryHub:
    """What a zmq Context is to the ZeroMQ bus: endpoints are plain names, joined inside this one hub."""

    def __init__(self) -> None:
        self.subscribers: dict[str, list[MemorySubscriber]] = {}
        self.servers: dict[str, MemoryRequestServer] = {}
        self.clients: dict[bytes, MemoryRequestClient] = {}
        self._idents = itertools.count(1)

    def new_ident(self) -> bytes:
        return f"c{next(self._idents)}".encode()

    def send_raw(self, ep: str, frames: Sequence[bytes]) -> None:
        """Frames as any publisher on `ep` would send them (tests: a malformed one)."""
        for sub in list(self.subscribers.get(ep, ())):
            sub.deliver(list(frames))

    def destroy(self) -> None:
        for subs in list(self.subscribers.values()):
            for sub in list(subs):
                sub.close()
        for server in list(self.servers.values()):
            server.close()
        for client in list(self.clients.values()):
            client.close()


class MemoryPublisher(Stamper):
    def __init__(self, hub: MemoryHub, ep: str, source: str, *, strict: bool | None = None) -> None:
        super().__init__(source, strict=strict)
        self._hub = hub
        self.endpoint = ep

    def publish(self, topic: str, msg: Message) -> Message:
        """Stamp and deliver to every subscriber of this endpoint; returns the stamped message."""
        _, stamped = self.stamp(topic, msg)
        self._hub.send_raw(self.endpoint, (topic.encode(), ENCODER.encode(stamped)))
        return stamped

    def close(self) -> None:
        pass


class MemorySubscriber(Sequencer):
    def __init__(self, hub: MemoryHub, endpoints: Sequence[str], prefixes: Sequence[str]) -> None:
        super().__init__(prefixes)
        self._hub = hub
        self._raw_prefixes = tuple(p.encode() for p in self.prefixes)
        self._endpoints = tuple(endpoints)
        self._queue: deque[list[bytes]] = deque()
        self._arrived = asyncio.Event()
        for ep in self._endpoints:
            hub.subscribers.setdefault(ep, []).append(self)

    def deliver(self, frames: list[bytes]) -> None:
        # zmq's SUB filters on the first frame's raw bytes and drops past its high-water mark: the same here
        if frames and not any(frames[0].startswith(p) for p in self._raw_prefixes):
            return
        if len(self._queue) >= HWM:
            return
        self._queue.append(frames)
        self._arrived.set()

    async def recv(self, timeout: float | None = None) -> Received | None:
        """The next well-formed message, or None when `timeout` seconds pass with nothing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            got = self.recv_nowait()
            if got is not None:
                return got
            self._arrived.clear()
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return None
            try:
                await asyncio.wait_for(self._arrived.wait(), wait)
            except TimeoutError:
                return None

    def recv_nowait(self) -> Received | None:
        while self._queue:
            got = self._accept(self._queue.popleft())
            if got is not None:
                return got
        return None

    def close(self) -> None:
        for ep in self._endpoints:
            subs = self._hub.subscribers.get(ep, [])
            if self in subs:
                subs.remove(self)


class MemoryRequestServer(ServerCore):
    def __init__(
        self,
        hub: MemoryHub,
        ep: str,
        request_type: Any,
        handler: Handler,
        quick: QuickHandler | None = None,
    ) -> None:
        super().__init__(request_type, handler, quick)
        self._hub = hub
        self.endpoint = ep
        self._inbox: deque[list[bytes]] = deque()
        self._arrived = asyncio.Event()
        hub.servers[ep] = self

    def deliver(self, ident: bytes, body: bytes) -> None:
        self._inbox.append([ident, b"", body])
        self._arrived.set()

    async def serve(self, stop: asyncio.Event) -> None:
        """Answer requests until `stop` is set."""
        while not stop.is_set():
            self._take_all()
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), 0.2)
            except TimeoutError:
                continue
        self._cancel_tasks()

    def take_waiting(self) -> int:
        """Take the requests already waiting (see RequestServer.take_waiting); returns how many."""
        if self._quick is None:
            return 0
        return self._take_all()

    def _take_all(self) -> int:
        taken = 0
        while self._inbox:
            taken += 1
            self._take(self._inbox.popleft())
        return taken

    def _send(self, ident: bytes, reply: Reply) -> None:
        client = self._hub.clients.get(ident)
        if client is not None:  # else the client gave up and reset: its retry carries the same req_id
            client.deliver(ident, ENCODER.encode(reply))

    def close(self) -> None:
        if self._hub.servers.get(self.endpoint) is self:
            del self._hub.servers[self.endpoint]


class MemoryRequestClient(Calls):
    """Lazy Pirate in memory: a try that gets no reply in time is abandoned (a new identity, like a new socket)."""

    def __init__(self, hub: MemoryHub, ep: str, *, timeout: float = 2.0, retries: int = 2) -> None:
        self._hub = hub
        self.endpoint = ep
        self.timeout = timeout
        self.retries = retries
        self._lock = asyncio.Lock()
        self._ident = b""
        self._replies: asyncio.Queue[bytes] = asyncio.Queue()

    def deliver(self, ident: bytes, body: bytes) -> None:
        if ident == self._ident:
            self._replies.put_nowait(body)

    def _open(self) -> bytes:
        if not self._ident:
            self._ident = self._hub.new_ident()
            self._hub.clients[self._ident] = self
            self._replies = asyncio.Queue()
        return self._ident

    def _reset(self) -> None:
        self._hub.clients.pop(self._ident, None)
        self._ident = b""

    async def request(self, req: Request, *, timeout: float | None = None, idempotent: bool = True) -> Reply:
        """Send and wait; RequestTimeout after every try. The same req_id is reused on every retry."""
        req_id = req.req_id or uuid.uuid4().hex[:16]
        body = ENCODER.encode(msgspec.structs.replace(req, req_id=req_id))
        wait = self.timeout if timeout is None else timeout
        tries = 1 + (self.retries if idempotent else 0)
        async with self._lock:
            for _ in range(tries):
                ident = self._open()
                deadline = time.monotonic() + wait
                reply = await self._one_try(ident, body, req_id, deadline)
                if reply is not None:
                    return reply
                self._reset()
        raise RequestTimeout(f"no reply from {self.endpoint} within {wait:g}s ({tries} tries)")

    async def _one_try(self, ident: bytes, body: bytes, req_id: str, deadline: float) -> Reply | None:
        # a REQ with no server to send to waits for one to bind, until the deadline
        while (server := self._hub.servers.get(self.endpoint)) is None:
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.01)
        server.deliver(ident, body)
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(self._replies.get(), left)
            except TimeoutError:
                return None
            try:
                reply = REPLY_DECODER.decode(raw)
            except msgspec.DecodeError:
                return None
            if reply.req_id == req_id:
                return reply
        return None

    def close(self) -> None:
        self._reset()
