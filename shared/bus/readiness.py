"""Waiting on a zmq socket with one asyncio reader on its file descriptor, and the plain sockets it waits on.

It must never block the event loop: every read and send it serves is NOBLOCK.
"""

from __future__ import annotations

import asyncio

import zmq
import zmq.asyncio


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


def plain_socket(ctx: zmq.asyncio.Context, kind: int) -> tuple[zmq.asyncio.Socket, zmq.Socket[bytes]]:
    """(owner, socket): the owner is tracked by ctx, so ctx.destroy() closes it even if we never do; all I/O goes
    through the plain (non-asyncio) shadow, waited on with Readiness."""
    owner = ctx.socket(kind)
    sock: zmq.Socket[bytes] = zmq.Socket.shadow(owner.underlying)
    sock.setsockopt(zmq.LINGER, 0)
    return owner, sock
