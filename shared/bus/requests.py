"""Requests: Lazy-Pirate clients (REQ) and a ROUTER server that answers each request in its own task.

The server's decoding and answering are shared by the ZeroMQ server and the in-memory one. A handler bug costs
one reply (ok=False), never the server; only idempotent requests are retried, with the same req_id.
"""

from __future__ import annotations

import abc
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import zmq
import zmq.asyncio
from loguru import logger

from shared.bus.endpoints import bind, new_context
from shared.bus.publish import ENCODER
from shared.bus.readiness import Readiness, plain_socket
from shared.contract import typed_result
from shared.log import log_every
from shared.messages import Reply, Request

REPLY_DECODER = msgspec.msgpack.Decoder(Reply)


class RequestTimeout(Exception):
    """No reply within the timeout after every allowed try; the server is down or stuck."""


class RequestFailed(Exception):
    """The server answered ok=False; str() is its error line."""


class Calls(abc.ABC):
    """call() and ask() on top of a client's request(): shared by the ZeroMQ client and the in-memory one."""

    @abc.abstractmethod
    async def request(self, req: Request, *, timeout: float | None = None, idempotent: bool = True) -> Reply:
        """Send `req` and wait for its reply (the transport's own)."""

    async def call(self, req: Request, *, timeout: float | None = None, idempotent: bool = True) -> Any:
        """request() that returns the result or raises RequestFailed with the server's error line."""
        reply = await self.request(req, timeout=timeout, idempotent=idempotent)
        if not reply.ok:
            raise RequestFailed(reply.error)
        return reply.result

    async def ask(self, req: Request, *, timeout: float | None = None, idempotent: bool = True) -> Any:
        """call() with the result converted to the reply type shared/contract.py declares for `req`."""
        return typed_result(req, await self.call(req, timeout=timeout, idempotent=idempotent))


class RequestClient(Calls):
    """Lazy Pirate: REQ with a timeout, then close and reopen; only idempotent requests are retried."""

    def __init__(self, ctx: zmq.asyncio.Context, ep: str, *, timeout: float = 2.0, retries: int = 2) -> None:
        self._ctx = ctx
        self.endpoint = ep
        self.timeout = timeout
        self.retries = retries
        self._lock = asyncio.Lock()
        self._open: tuple[zmq.asyncio.Socket, zmq.Socket[bytes], Readiness] | None = None

    def _socket(self) -> tuple[zmq.Socket[bytes], Readiness]:
        if self._open is None:
            owner, sock = plain_socket(self._ctx, zmq.REQ)
            sock.connect(self.endpoint)
            self._open = (owner, sock, Readiness(sock))
        return self._open[1], self._open[2]

    def _reset(self) -> None:
        if self._open is not None:
            owner, _, ready = self._open
            ready.close()
            owner.close(linger=0)
            self._open = None

    async def request(self, req: Request, *, timeout: float | None = None, idempotent: bool = True) -> Reply:
        """Send and wait; RequestTimeout after every try. The same req_id is reused on every retry."""
        req_id = req.req_id or uuid.uuid4().hex[:16]
        body = ENCODER.encode(msgspec.structs.replace(req, req_id=req_id))
        wait = self.timeout if timeout is None else timeout
        tries = 1 + (self.retries if idempotent else 0)
        async with self._lock:  # REQ is lockstep: one request in flight per client
            for _ in range(tries):
                sock, ready = self._socket()
                deadline = time.monotonic() + wait
                if await ready.wait(wait, zmq.POLLOUT):  # a REQ with nothing to send to waits here
                    sock.send(body, zmq.NOBLOCK)
                    ready.recheck()
                    while await ready.wait(deadline - time.monotonic()):
                        try:
                            reply = REPLY_DECODER.decode(sock.recv(zmq.NOBLOCK))
                        except zmq.Again:  # the signal came before the message
                            continue
                        except msgspec.DecodeError:
                            break
                        if reply.req_id == req_id:
                            return reply
                self._reset()
        raise RequestTimeout(f"no reply from {self.endpoint} within {wait:g}s ({tries} tries)")

    def close(self) -> None:
        self._reset()


Handler = Callable[[Any], Awaitable[Any]]
QuickHandler = Callable[[Any], Any]


class RequestError(Exception):
    """Raised by a handler to answer ok=False with this one-line message."""


class AnswerLater(Exception):
    """Raised by a quick handler when the request needs to wait for something: the async handler answers it."""


class ServerCore(abc.ABC):
    """What every request server does with a request body: decode it, try the quick handler, else answer it in
    its own task. Subclasses deliver the reply (`_send`)."""

    def __init__(self, request_type: Any, handler: Handler, quick: QuickHandler | None = None) -> None:
        self._decoder = msgspec.msgpack.Decoder(request_type)
        self._handler = handler
        self._quick = quick
        self._tasks: set[asyncio.Task[None]] = set()
        self.malformed = 0
        self.served = 0

    def _take(self, frames: list[bytes]) -> None:
        if len(frames) < 3:
            self.malformed += 1
            return
        ident, body = frames[0], frames[-1]
        try:
            req = self._decoder.decode(body)
        except msgspec.DecodeError as exc:
            self.malformed += 1
            log_every("bus.bad-request", 10.0, "WARNING", f"malformed request: {exc}")
            self._send(ident, Reply(req_id=_guess_req_id(body), ok=False, error=f"malformed request: {exc}"))
            return
        self.served += 1
        if self._quick is not None:
            try:
                reply = self._replied(req, self._quick)
            except AnswerLater:
                pass
            else:
                self._send(ident, reply)
                return
        task = asyncio.create_task(self._answer(ident, req))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, ident: bytes, req: Any) -> None:
        try:
            result = await self._handler(req)
        except Exception as exc:
            reply = self._failed(req, exc)
        else:
            reply = Reply(req_id=req.req_id, ok=True, result=result)
        self._send(ident, reply)

    def _replied(self, req: Any, quick: QuickHandler) -> Reply:
        try:
            return Reply(req_id=req.req_id, ok=True, result=quick(req))
        except AnswerLater:
            raise
        except Exception as exc:
            return self._failed(req, exc)

    @staticmethod
    def _failed(req: Any, exc: Exception) -> Reply:
        if isinstance(exc, RequestError):
            return Reply(req_id=req.req_id, ok=False, error=str(exc))
        # a handler bug must cost one reply, never the server
        logger.opt(exception=exc).error("request {} failed", type(req).__name__)
        return Reply(req_id=req.req_id, ok=False, error=f"internal error: {type(exc).__name__}: {exc}")

    @abc.abstractmethod
    def _send(self, ident: bytes, reply: Reply) -> None:
        """Deliver `reply` to the client `ident` (the transport's own)."""

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()


class RequestServer(ServerCore):
    """ROUTER: every request runs in its own task, so a slow one (history) never blocks another (an order).

    A `quick` handler (synchronous) is tried first: what it answers at once (an order whose contract is known)
    is answered without a task, and `take_waiting()` lets a busy callback answer such requests between two of
    its own steps. It raises AnswerLater for anything that would have to wait."""

    MAX_TAKEN = 64  # requests taken per wake-up before the loop gets a turn

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        ep: str,
        request_type: Any,
        handler: Handler,
        quick: QuickHandler | None = None,
    ) -> None:
        super().__init__(request_type, handler, quick)
        self._owner, self._sock = plain_socket(ctx, zmq.ROUTER)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        bind(self._sock, ep)
        self.endpoint = ep
        self._ready = Readiness(self._sock)

    async def serve(self, stop: asyncio.Event) -> None:
        """Answer requests until `stop` is set."""
        while not stop.is_set():
            if not await self._ready.wait(0.2):
                continue
            self._take_all()
        self._cancel_tasks()

    def take_waiting(self) -> int:
        """Take the requests already waiting, from inside a busy callback (the bridge calls it between two of the
        Gateway's messages): what the quick handler answers is answered before this returns, the rest start their
        tasks. Never raises; returns how many were taken."""
        if self._quick is None or not int(self._sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            return 0
        try:
            return self._take_all()
        except Exception:  # it runs inside someone else's callback: a bug here must cost a log line only
            logger.opt(exception=True).error("taking waiting requests failed")
            return 0
        finally:
            self._ready.recheck()

    def _take_all(self) -> int:
        # every request already waiting is taken in this loop turn (a burst of orders), but a bounded number, so
        # a flood of requests cannot starve the loop
        taken = 0
        for _ in range(self.MAX_TAKEN):
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            taken += 1
            self._take(frames)
        return taken

    def _send(self, ident: bytes, reply: Reply) -> None:
        try:  # a ROUTER never waits to send: it queues, or refuses at once
            self._sock.send_multipart((ident, b"", ENCODER.encode(reply)), zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # the client gave up and closed; its retry carries the same req_id
            log_every("bus.reply-lost", 10.0, "INFO", f"reply {reply.req_id} not delivered: {exc}")
        self._ready.recheck()

    def close(self) -> None:
        self._ready.close()
        self._owner.close(linger=0)


def _guess_req_id(body: bytes) -> str:
    try:
        raw = msgspec.msgpack.decode(body)
    except msgspec.DecodeError:
        return ""
    return str(raw.get("req_id", "")) if isinstance(raw, dict) else ""


def request_once(ep: str, req: Request, timeout: float = 2.0, retries: int = 0) -> Reply:
    """Synchronous one-shot request for command-line tools; RequestTimeout when nobody answers."""

    async def go() -> Reply:
        ctx = new_context()
        client = RequestClient(ctx, ep, timeout=timeout, retries=retries)
        try:
            return await client.request(req)
        finally:
            client.close()
            ctx.destroy(linger=0)

    return asyncio.run(go())
