"""Gateway requests shared by everyone who asks: one in flight per question (concurrent askers share the answer,
since the IB API keys some requests by name and a second ask would orphan the first).

Pure asyncio over whatever coroutine makes the request (the ib_async adapter's methods). It must never wait
without a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
REQUEST_TIMEOUT = 10.0  # one Gateway request (contract details, positions, ...) that must not hang a caller


class GatewayRequests:
    """`await once(key, make)`: one request per key at a time, its answer shared."""

    def __init__(self) -> None:
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}

    async def once(
        self, key: Hashable, make: Callable[[], Awaitable[T]], timeout: float = REQUEST_TIMEOUT
    ) -> T:
        """Run one Gateway request per `key` at a time; concurrent callers share its answer."""
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.ensure_future(asyncio.wait_for(make(), timeout))
            self._inflight[key] = fut
            fut.add_done_callback(lambda done: self._settled(key, done))
        result: T = await asyncio.shield(fut)
        return result

    def _settled(self, key: Hashable, fut: asyncio.Future[Any]) -> None:
        self._inflight.pop(key, None)
        if not fut.cancelled():
            fut.exception()  # retrieved here, so a failure every asker gave up on is not reported as lost
