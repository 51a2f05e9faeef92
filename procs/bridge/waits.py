"""The session's waits: the first of several things to happen, bounded; a task cancelled and waited for.

Pure asyncio. It must never leave a helper task it created running; `first_of` never cancels what it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any


async def first_of(
    *aws: Awaitable[Any] | asyncio.Event, timeout: float | None = None
) -> asyncio.Future[Any] | None:
    """Wait for the first of `aws` (Events become their wait()); the winner, or None on timeout. Helpers
    created here are cancelled; futures passed in are left alone."""
    futs: list[asyncio.Future[Any]] = []
    made: list[asyncio.Future[Any]] = []
    for aw in aws:
        if isinstance(aw, asyncio.Event):
            fut: asyncio.Future[Any] = asyncio.ensure_future(aw.wait())
            made.append(fut)
        else:
            fut = asyncio.ensure_future(aw)
        futs.append(fut)
    try:
        done, _ = await asyncio.wait(futs, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for fut in made:
            fut.cancel()
    return next((f for f in futs if f in done), None)


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
