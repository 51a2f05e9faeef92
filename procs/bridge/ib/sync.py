"""The startup sync's requests: positions, open and completed orders, account values and executions, each with
its own timeout (the same requests ib_async's connectAsync would send, minus the per-account multi updates the
bridge does not use).

Part of the ib_async adapter (procs/bridge/ib). It must never raise for a missing answer: a timed-out part is
reported in one line and retried later by the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ib_async import IB


async def _guarded(name: str, make: Callable[[], Awaitable[Any]], timeout: float) -> str:
    """'' when the request completed, else one line saying why not."""
    try:
        await asyncio.wait_for(make(), timeout)
    except TimeoutError:
        return f"{name}: no answer in {timeout:g} s"
    except ConnectionError as exc:
        return f"{name}: {exc or 'not connected'}"
    return ""


async def startup_sync(
    ib: IB, account: str, timeout: float, *, with_orders: bool, with_account: bool
) -> list[str]:
    """Run the sync; returns the parts that failed (empty: complete)."""
    parts: dict[str, Callable[[], Awaitable[Any]]] = {"positions": ib.reqPositionsAsync}
    if with_orders:
        parts["open orders"] = ib.reqOpenOrdersAsync
        parts["completed orders"] = lambda: ib.reqCompletedOrdersAsync(False)
    if with_account:
        parts["account values"] = lambda: ib.reqAccountUpdatesAsync(account)
    results = await asyncio.gather(*(_guarded(name, make, timeout) for name, make in parts.items()))
    errors = [r for r in results if r]
    # executions after the orders, so each fill finds its order (as ib_async's own connect does)
    failed = await _guarded("executions", ib.reqExecutionsAsync, timeout)
    return errors + ([failed] if failed else [])
