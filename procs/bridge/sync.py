"""The startup sync every (re)connect runs before the bridge says READY: positions, open and completed orders,
account values and executions, each with its own timeout; then the order registry is refilled from what the
Gateway holds. A timed-out part is reported and retried later; it never closes the session.

Adapter over ib_async's request methods (the same requests its connectAsync would send, minus the per-account
multi updates the bridge does not use). It must never raise for a missing answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ib_async import IB

from procs.bridge.convert import order_event
from procs.bridge.gateway_word import GatewayWord
from procs.bridge.orders import OrderRecord, OrderRegistry
from shared.config import Settings


async def _guarded(name: str, make: Callable[[], Awaitable[Any]], timeout: float) -> str:
    """'' when the request completed, else one line saying why not."""
    try:
        await asyncio.wait_for(make(), timeout)
    except TimeoutError:
        return f"{name}: no answer in {timeout:g} s"
    except ConnectionError as exc:
        return f"{name}: {exc or 'not connected'}"
    return ""


async def startup_sync(ib: IB, settings: Settings, timeout: float, *, with_account: bool) -> list[str]:
    """Run the sync; returns the parts that failed (empty: complete)."""
    parts: dict[str, Callable[[], Awaitable[Any]]] = {"positions": ib.reqPositionsAsync}
    if not settings.ib_readonly:
        parts["open orders"] = ib.reqOpenOrdersAsync
        parts["completed orders"] = lambda: ib.reqCompletedOrdersAsync(False)
    if with_account:
        parts["account values"] = lambda: ib.reqAccountUpdatesAsync(settings.ib_account)
    results = await asyncio.gather(*(_guarded(name, make, timeout) for name, make in parts.items()))
    errors = [r for r in results if r]
    # executions after the orders, so each fill finds its order (as ib_async's own connect does)
    failed = await _guarded("executions", ib.reqExecutionsAsync, timeout)
    return errors + ([failed] if failed else [])


def reconcile_orders(
    ib: IB, orders: OrderRegistry, word: GatewayWord, generation: int, *, complete: bool
) -> list[OrderRecord]:
    """Teach the registry every order the Gateway holds (by orderRef) and every order id it showed; after a
    complete sync, return the orders we sent in an earlier session that never reached the Gateway (now safe to
    retry)."""
    at_gateway: set[str] = set()
    for trade in ib.trades():
        ev = order_event(trade, word.status_of(trade))
        orders.seen(ev.client_order_id, ev.symbol, ev.order_id, ev.perm_id, ev.status)
        if ev.client_order_id:
            at_gateway.add(ev.client_order_id)
    for fill in ib.fills():
        orders.note_order_id(int(fill.execution.orderId or 0))  # completed orders carry no order id; fills do
        if fill.execution.orderRef:
            at_gateway.add(fill.execution.orderRef)
    if not complete:
        return []
    return orders.forget_unacknowledged(at_gateway, generation)
