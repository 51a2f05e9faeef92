"""The one wait helper of the tests: poll a check until it holds, synchronously or in an event loop.

Generous timeouts, never tight wall-clock asserts: the machine is shared. It must never sleep a fixed time in
place of checking what it waits for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
        except Exception as exc:  # the thing may not be up yet
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last error: {last_exc!r})")


async def wait_for_async(
    what: str, check: Callable[[], Any | Awaitable[Any]], timeout: float, interval: float = 0.05
) -> Any:
    """wait_for inside an event loop: `check` may be a plain or an async function; the loop runs meanwhile."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            got = check()
            if asyncio.iscoroutine(got) or isinstance(got, asyncio.Future):
                got = await got
            if got:
                return got
        except Exception as exc:  # the thing may not be up yet
            last_exc = exc
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last error: {last_exc!r})")
