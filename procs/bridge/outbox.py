"""Everything the bridge sends to the Gateway passes through one paced outbox (IB allows 50 messages/s, all
types combined).

Pure pacing over encoded messages: the ib_async adapter (procs/bridge/ib/wire.py) routes every request here and
gives the outbox its socket writer. It must never send a message queued for a dead session on a new one, and never
let a heartbeat or an order wait behind a backlog of requests: they have a lane of their own, drained first, and a
reserve of the window (pacing.order_reserve) the other messages never use, so the first order after a burst of
subscriptions (start-up, a reconnect) goes at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from procs.bridge.pacing import Limiter

# The order lane: placeOrder and reqGlobalCancel in their order; reqCurrentTime (the heartbeat: a backlog must not
# look like a stalled API) and cancelOrder (the one message a trader wants out first) at its head, but a cancel
# never ahead of its own order's placeOrder.
_PLACE = "3\0"
_ORDER_PREFIXES = (_PLACE, "58\0")
_HEARTBEAT = "49\0"
_CANCEL = "4\0"


def _order_id(msg: str, at: int) -> str:
    fields = msg.split("\0", at + 1)
    return fields[at] if len(fields) > at else ""


class PacedOutbox:
    """Two FIFOs (orders, then the rest) drained by the pacing limiter; `send` is what the adapter installs as
    the client's sendMsg, `write` puts one message on the socket.

    `reserve`: slots of the limiter's window left to the order lane (the rest of the traffic never takes them)."""

    def __init__(
        self,
        write: Callable[[str], None],
        limiter: Limiter,
        *,
        room_limit: int = 20,
        reserve: int = 0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._socket_write = write
        self.room_limit = room_limit
        self.reserve = reserve
        self._waiters: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}
        self._limiter = limiter
        self._clock = clock
        self._orders: deque[str] = deque()
        self._queue: deque[str] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.sent = 0
        self.waits = 0  # times the limiter held messages back
        self.dropped = 0  # messages discarded because their session ended before they could go
        self.max_backlog = 0

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    @property
    def backlog(self) -> int:
        return len(self._orders) + len(self._queue)

    def send(self, msg: str | None) -> None:
        """Queue one encoded message (the client calls this for every request) and send what the limiter allows."""
        if msg:
            if msg.startswith(_ORDER_PREFIXES):
                self._orders.append(msg)
            elif msg.startswith(_HEARTBEAT):
                self._orders.appendleft(msg)
            elif msg.startswith(_CANCEL):
                self._orders.insert(self._after_own_place(_order_id(msg, 2)), msg)
            else:
                self._queue.append(msg)
        self._drain()

    def _after_own_place(self, order_id: str) -> int:
        """Where a cancel goes in the order lane: first, or right behind its own order's queued placeOrder."""
        for i in range(len(self._orders) - 1, -1, -1):
            msg = self._orders[i]
            if msg.startswith(_PLACE) and _order_id(msg, 1) == order_id:
                return i + 1
        return 0

    def _on_timer(self) -> None:
        self._timer = None
        self._drain()

    def _drain(self) -> None:
        now = self._now()
        limiter = self._limiter
        while self._orders and limiter.try_take(now):
            self._write(self._orders.popleft())
        while not self._orders and self._queue and limiter.try_take(now, self.reserve):
            self._write(self._queue.popleft())
        if self._orders or self._queue:
            self.waits += 1
            self.max_backlog = max(self.max_backlog, self.backlog)
            if self._timer is None:
                wait = limiter.wait_time(now) if self._orders else limiter.wait_time(now, self.reserve)
                loop = asyncio.get_running_loop()
                self._timer = loop.call_at(loop.time() + wait, self._on_timer)
        self._wake()

    def _write(self, msg: str) -> None:
        self._socket_write(msg)
        self.sent += 1

    async def flush(self, timeout: float) -> bool:
        """Let what is queued go out (an order must not be lost to an orderly stop); False if time ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.backlog and loop.time() < deadline:
            await asyncio.sleep(max(0.01, self._limiter.wait_time(self._now())))
        return not self.backlog

    def clear(self) -> None:
        """The session ended: what it queued must not reach the next one."""
        self.dropped += self.backlog
        self._orders.clear()
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _queued(self, order: bool) -> int:
        """What a message of this lane would wait behind: an order only other orders, the rest everything."""
        return len(self._orders) if order else self.backlog

    def has_room(self, order: bool = False) -> bool:
        """True when a message queued now would not wait behind `room_limit` others or behind earlier waiters
        (`order`: in the order lane)."""
        return self._queued(order) < self.room_limit and not self._waiters[order]

    async def room(self, timeout: float, order: bool = False) -> bool:
        """Wait (bounded, first come first served) until fewer than `room_limit` messages are queued ahead, so a
        burst of requests waits here instead of piling up behind the limiter; False on timeout."""
        if self.has_room(order):
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[order].append(fut)
        self._wake()
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return False
        return True

    def _wake(self) -> None:
        for order, waiters in self._waiters.items():
            free = self.room_limit - self._queued(order)
            while waiters and free > 0:
                fut = waiters.popleft()
                if not fut.done():
                    fut.set_result(None)
                    free -= 1
        if any(self._waiters.values()) and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(0.05, self._on_timer)
