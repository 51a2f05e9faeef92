"""The message bus: numbered PUB/SUB streams and Lazy-Pirate requests over ZeroMQ, msgspec on the wire.

Endpoints are ipc:// sockets under var/run/ in production and inproc:// in unit tests (same classes, one
shared Context). Sockets use LINGER 0 so a stopping process never hangs; a malformed frame is counted,
logged (rate-limited) and dropped, never raised into the caller's loop.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import zmq
import zmq.asyncio
from loguru import logger

from shared.config import Settings
from shared.log import log_every
from shared.messages import Message, Published, Reply, Request

HWM = 100_000  # bursts (warm-up, reconnect replays) must not hit the silent PUB drop at the default 1000

# One name per socket; every program's stream endpoint is listed so the watchdog can hear every heartbeat.
PUB_SOCKETS = {
    "bridge": "bridge.pub",
    "features": "features.pub",
    "strategy": "strategy.pub",
    "executor": "executor.pub",
    "watchdog": "watchdog.pub",
    "monitor": "monitor.pub",  # its heartbeat only: the monitor publishes nothing else
}
REQ_SOCKETS = {"bridge": "bridge.req", "executor": "executor.req", "monitor": "monitor.req"}

_ENCODER = msgspec.msgpack.Encoder()
_PUBLISHED = msgspec.msgpack.Decoder(Published)
_REPLY = msgspec.msgpack.Decoder(Reply)


class RequestTimeout(Exception):
    """No reply within the timeout after every allowed try; the server is down or stuck."""


class RequestFailed(Exception):
    """The server answered ok=False; str() is its error line."""


def endpoint(settings: Settings, name: str) -> str:
    """ipc:// endpoint of a named socket under var/run/ (the directory is created mode 0700)."""
    run = settings.run_dir
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(run, 0o700)
    return f"ipc://{run / name}"


def pub_endpoint(settings: Settings, program: str) -> str:
    return endpoint(settings, PUB_SOCKETS[program])


def req_endpoint(settings: Settings, program: str) -> str:
    return endpoint(settings, REQ_SOCKETS[program])


def new_context() -> zmq.asyncio.Context:
    """The process's one zmq context; every socket it makes defaults to LINGER 0."""
    ctx = zmq.asyncio.Context()
    ctx.setsockopt(zmq.LINGER, 0)
    return ctx


def _bind(sock: zmq.Socket[Any], ep: str) -> None:
    if ep.startswith("ipc://"):
        Path(ep.removeprefix("ipc://")).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    sock.bind(ep)


def topic_matches(topic: str, prefix: str) -> bool:
    """`bar.AAPL` matches prefix `bar.` and `bar.AAPL`, never `bar.AAPLX` (zmq alone matches raw bytes)."""
    if prefix == "" or prefix.endswith("."):
        return topic.startswith(prefix)
    return topic == prefix or topic.startswith(prefix + ".")


class Readiness:
    """Waits for a zmq socket to be readable (or writable) on the socket's own file descriptor: one asyncio reader
    for the socket's life instead of pyzmq's Future, poll and callback chain for every message, which cost a hop
    that carries one message at a time (a bar, an order) about twice the CPU per message (measured here: ~80 vs
    ~40 us per message 200 us apart, zmq I/O thread included).

    ZMQ_FD is a signal, not a level: it fires when the socket's state may have changed, and reading ZMQ_EVENTS both
    answers and clears it. So the reader always reads EVENTS (else asyncio's level-triggered epoll would spin), and
    a waiter checks EVENTS itself before it sleeps, so a message that came in meanwhile is never missed. Any other
    operation on the socket (a send) can take that signal too: call `recheck()` after it. One task waits at a time
    (each socket here has one reader)."""

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self._sock = sock
        self._fd = int(sock.getsockopt(zmq.FD))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self._event: int = zmq.POLLIN

    def recheck(self) -> None:
        """Call after any other operation on the socket (a send): it may have taken the descriptor's signal of a
        message that arrived meanwhile, and a waiter would then sleep until its timeout."""
        self._on_signal()

    def _on_signal(self) -> None:
        events = int(self._sock.getsockopt(zmq.EVENTS))  # also clears the descriptor
        waiter = self._waiter
        if waiter is not None and not waiter.done() and events & self._event:
            waiter.set_result(True)

    @staticmethod
    def _expire(waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            waiter.set_result(False)

    async def wait(self, timeout: float | None, event: int = zmq.POLLIN) -> bool:
        """True once the socket has `event` (POLLIN: a message to read); False when `timeout` seconds pass first."""
        if int(self._sock.getsockopt(zmq.EVENTS)) & event:
            return True
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self.close()
            loop.add_reader(self._fd, self._on_signal)
            self._loop = loop
        self._event = event
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = None if timeout is None else loop.call_later(max(0.0, timeout), self._expire, waiter)
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        """Forget the descriptor; call before the socket closes."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._loop = None


def _plain_socket(ctx: zmq.asyncio.Context, kind: int) -> tuple[zmq.asyncio.Socket, zmq.Socket[bytes]]:
    """(owner, socket): the owner is tracked by ctx, so ctx.destroy() closes it even if we never do; all I/O goes
    through the plain (non-asyncio) shadow, waited on with Readiness."""
    owner = ctx.socket(kind)
    sock: zmq.Socket[bytes] = zmq.Socket.shadow(owner.underlying)
    sock.setsockopt(zmq.LINGER, 0)
    return owner, sock


def stream_of(topic: str) -> str:
    """A topic's stream: `bar.AAPL` -> `bar`, `fill` -> `fill`. Messages are numbered per stream too."""
    return topic.partition(".")[0]


class Publisher:
    """Binds a PUB socket and stamps every message with source, epoch, seq (+1 each), stream_seq (+1 each in its
    stream) and ts_ns."""

    def __init__(self, ctx: zmq.asyncio.Context, ep: str, source: str) -> None:
        self.source = source
        self.epoch = f"{source}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.seq = 0
        self.stream_seqs: dict[str, int] = {}
        self._owner, self._sock = _plain_socket(ctx, zmq.PUB)  # PUB never blocks: publish() stays synchronous
        self._sock.setsockopt(zmq.SNDHWM, HWM)
        _bind(self._sock, ep)
        self.endpoint = ep

    def publish(self, topic: str, msg: Message) -> Message:
        """Stamp and send; returns the stamped message."""
        self.seq += 1
        stream = stream_of(topic)
        n = self.stream_seqs[stream] = self.stream_seqs.get(stream, 0) + 1
        stamped = msgspec.structs.replace(
            msg, source=self.source, epoch=self.epoch, seq=self.seq, stream_seq=n, ts_ns=time.time_ns()
        )
        self._sock.send_multipart((topic.encode(), _ENCODER.encode(stamped)))
        return stamped

    def close(self) -> None:
        self._owner.close(linger=0)


@dataclass(frozen=True, slots=True)
class Received:
    """One message off a stream; gap > 0 or new_epoch means messages were lost: resynchronise by request."""

    topic: str
    msg: Published
    gap: int = 0
    new_epoch: bool = False

    @property
    def needs_resync(self) -> bool:
        return self.gap > 0 or self.new_epoch


@dataclass(slots=True)
class StreamStats:
    received: int = 0
    gaps: int = 0
    lost: int = 0
    new_epochs: int = 0
    malformed: int = 0
    epochs: dict[str, str] = field(default_factory=dict)  # source -> its epoch
    last_seen: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, stream) -> stream_seq


class Subscriber:
    """Connects a SUB socket to one or more publishers and tracks each source's epoch and each stream's numbers.

    A gap is only certain in a stream taken whole: prefix "" (everything), `bar.` or `fill` take whole streams,
    `bar.AAPL` takes part of one (its gaps go unseen)."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoints: Sequence[str], prefixes: Sequence[str]) -> None:
        self._owner, self._sock = _plain_socket(ctx, zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, HWM)
        self.prefixes = tuple(prefixes)
        self._whole = {p.removesuffix(".") for p in self.prefixes if "." not in p.removesuffix(".")}
        for p in self.prefixes:
            self._sock.setsockopt(zmq.SUBSCRIBE, p.encode())
        for ep in endpoints:
            self._sock.connect(ep)
        self.stats = StreamStats()
        self._ready = Readiness(self._sock)
        # messages already waiting are read without waiting (~10x the throughput of a wait each); every FAST_READS
        # reads it still yields, so a flood cannot starve the loop
        self._fast_reads = 0

    FAST_READS = 256

    async def recv(self, timeout: float | None = None) -> Received | None:
        """The next well-formed message, or None when `timeout` seconds pass with nothing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            frames = self._read_waiting()
            if frames is None:
                wait = None if deadline is None else deadline - time.monotonic()
                if not await self._ready.wait(wait):
                    return None
                continue
            if self._fast_reads >= self.FAST_READS:
                self._fast_reads = 0
                await asyncio.sleep(0)
            got = self._accept(frames)
            if got is not None:
                return got
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def recv_nowait(self) -> Received | None:
        """The next well-formed message already waiting, or None at once (never waits, never yields)."""
        while (frames := self._read_waiting()) is not None:
            got = self._accept(frames)
            if got is not None:
                return got
        return None

    def _read_waiting(self) -> list[bytes] | None:
        try:
            frames = self._sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            self._fast_reads = 0
            return None
        self._fast_reads += 1
        return frames

    def _accept(self, frames: list[bytes]) -> Received | None:
        if len(frames) != 2:
            self._malformed(f"{len(frames)} frames")
            return None
        topic = bytes(frames[0]).decode(errors="replace")
        if not any(topic_matches(topic, p) for p in self.prefixes):
            return None
        try:
            msg = _PUBLISHED.decode(frames[1])
        except msgspec.DecodeError as exc:
            self._malformed(f"{topic}: {exc}")
            return None
        return self._sequence(topic, msg)

    def _sequence(self, topic: str, msg: Published) -> Received:
        st = self.stats
        st.received += 1
        stream = stream_of(topic)
        known = st.epochs.get(msg.source)
        if known != msg.epoch:  # the first message of a source, or of its new process: numbers start again
            st.epochs[msg.source] = msg.epoch
            for key in [k for k in st.last_seen if k[0] == msg.source]:
                del st.last_seen[key]
            st.last_seen[(msg.source, stream)] = msg.stream_seq
            if known is None:
                return Received(topic, msg)
            st.new_epochs += 1
            return Received(topic, msg, new_epoch=True)
        prev = st.last_seen.get((msg.source, stream))
        st.last_seen[(msg.source, stream)] = msg.stream_seq
        if prev is None or not ("" in self._whole or stream in self._whole):
            return Received(topic, msg)
        gap = msg.stream_seq - prev - 1
        if gap > 0:
            st.gaps += 1
            st.lost += gap
            return Received(topic, msg, gap=gap)
        return Received(topic, msg)

    def _malformed(self, what: str) -> None:
        self.stats.malformed += 1
        log_every("bus.malformed", 10.0, "WARNING", f"dropped a malformed message ({what})")

    def close(self) -> None:
        self._ready.close()
        self._owner.close(linger=0)


class RequestClient:
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
            owner, sock = _plain_socket(self._ctx, zmq.REQ)
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
        body = _ENCODER.encode(msgspec.structs.replace(req, req_id=req_id))
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
                            reply = _REPLY.decode(sock.recv(zmq.NOBLOCK))
                        except zmq.Again:  # the signal came before the message
                            continue
                        except msgspec.DecodeError:
                            break
                        if reply.req_id == req_id:
                            return reply
                self._reset()
        raise RequestTimeout(f"no reply from {self.endpoint} within {wait:g}s ({tries} tries)")

    async def call(self, req: Request, *, timeout: float | None = None, idempotent: bool = True) -> Any:
        """request() that returns the result or raises RequestFailed with the server's error line."""
        reply = await self.request(req, timeout=timeout, idempotent=idempotent)
        if not reply.ok:
            raise RequestFailed(reply.error)
        return reply.result

    def close(self) -> None:
        self._reset()


Handler = Callable[[Any], Awaitable[Any]]
QuickHandler = Callable[[Any], Any]


class RequestError(Exception):
    """Raised by a handler to answer ok=False with this one-line message."""


class AnswerLater(Exception):
    """Raised by a quick handler when the request needs to wait for something: the async handler answers it."""


class RequestServer:
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
        self._owner, self._sock = _plain_socket(ctx, zmq.ROUTER)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        _bind(self._sock, ep)
        self.endpoint = ep
        self._decoder = msgspec.msgpack.Decoder(request_type)
        self._handler = handler
        self._quick = quick
        self._ready = Readiness(self._sock)
        self._tasks: set[asyncio.Task[None]] = set()
        self.malformed = 0
        self.served = 0

    async def serve(self, stop: asyncio.Event) -> None:
        """Answer requests until `stop` is set."""
        while not stop.is_set():
            if not await self._ready.wait(0.2):
                continue
            self._take_all()
        for task in list(self._tasks):
            task.cancel()

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

    def _send(self, ident: bytes, reply: Reply) -> None:
        try:  # a ROUTER never waits to send: it queues, or refuses at once
            self._sock.send_multipart((ident, b"", _ENCODER.encode(reply)), zmq.NOBLOCK)
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
