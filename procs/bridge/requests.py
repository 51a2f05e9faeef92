"""Gateway requests shared by everyone who asks: one in flight per question (concurrent askers share the
answer, since ib_async keys some requests by name and a second ask would orphan the first), and the contract
details cache (con ids never change; trading hours change daily, so details are refreshed hourly).

A thin adapter over ib_async's request methods. It must never wait without a timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from ib_async import IB, ContractDetails

from procs.bridge.convert import stock

T = TypeVar("T")
REQUEST_TIMEOUT = 10.0  # one Gateway request (contract details, positions, ...) that must not hang a caller
DETAILS_MAX_AGE = 3600.0


class GatewayRequests:
    def __init__(self, ib: IB) -> None:
        self.ib = ib
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._details: dict[str, tuple[float, ContractDetails]] = {}

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

    def known_details(self, symbol: str) -> ContractDetails | None:
        """The cached details of a stock, or None when they must be asked for (unknown or an hour old)."""
        cached = self._details.get(symbol)
        if cached is not None and time.monotonic() - cached[0] < DETAILS_MAX_AGE:
            return cached[1]
        return None

    async def contract_details(self, symbol: str) -> ContractDetails | None:
        """The Gateway's details of a US stock, cached for an hour; None when it knows no such stock."""
        known = self.known_details(symbol)
        if known is not None:
            return known
        found = await self.once(("details", symbol), lambda: self.ib.reqContractDetailsAsync(stock(symbol)))
        chosen = next((d for d in found if d.contract and d.contract.secType == "STK"), None)
        if chosen is not None and chosen.contract is not None:
            chosen.contract.exchange = "SMART"  # route through SMART, whatever the primary exchange is
            self._details[symbol] = (time.monotonic(), chosen)
        return chosen
