"""Historical bars on request: identical requests within IB's 15 s are answered from a short cache, identical
askers meanwhile share one fetch, and IB's historical pacing is waited for briefly or refused with the time to
retry.

Between the request API and the ib adapter, in the stack's types. It must never send IB an identical request
within 15 s, never serve an empty answer (maybe a farm outage) from the cache, and never fetch while the HMDS farm
is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable

from procs.bridge.farms import describe
from procs.bridge.pacing import HistoryPacer
from procs.bridge.session import GatewaySession
from shared.bus import RequestError
from shared.messages import Bar, ContractInfo, HistoryRequest

HISTORY_TIMEOUT = 30.0
HISTORY_MAX_WAIT = 5.0  # longer pacing waits are refused with the time to retry

Fetch = Callable[[], Awaitable[list[Bar]]]


class HistoryDesk:
    """`await desk.bars(req)` for a checked HistoryRequest; `details` and `gateway` are the API's guarded
    contract lookup and paced, shared Gateway request."""

    def __init__(
        self,
        session: GatewaySession,
        details: Callable[[str], Awaitable[ContractInfo]],
        gateway: Callable[[Hashable, Fetch, float], Awaitable[list[Bar]]],
    ) -> None:
        self.session = session
        self.pacer = HistoryPacer()
        self._details = details
        self._gateway = gateway
        self._cache: dict[Hashable, tuple[float, list[Bar]]] = {}
        self._pending: dict[Hashable, asyncio.Future[list[Bar]]] = {}

    async def bars(self, req: HistoryRequest) -> list[Bar]:
        key = (req.symbol, req.bar_seconds, req.duration_seconds, req.end_ns, req.use_rth)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.pacer.identical_gap:
            return cached[1]  # IB forbids identical requests within 15 s: the answer cannot have changed much
        down = self.session.conditions.farms_down_of("hmds")
        if down:  # its answer would be an error or nothing: a warm-up on nothing would pass for a warm one
            raise RequestError(f"{describe('hmds', down)}; retry when IB reports it OK (2106)")
        pending = self._pending.get(key)
        if pending is None:  # the first asker fetches; identical askers meanwhile share its answer
            pending = asyncio.ensure_future(self._fetch(req, key))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        bars: list[Bar] = await asyncio.shield(pending)
        return bars

    async def _fetch(self, req: HistoryRequest, key: Hashable) -> list[Bar]:
        await self._details(req.symbol)  # the history request names the contract by its details
        await self._turn(key, req.symbol)

        def fetch() -> Awaitable[list[Bar]]:
            return self.session.broker.history(
                req.symbol, req.bar_seconds, req.duration_seconds, req.end_ns, req.use_rth, HISTORY_TIMEOUT
            )

        bars = await self._gateway(("history", key), fetch, HISTORY_TIMEOUT + 1)
        now = time.monotonic()
        if bars:  # an empty answer may be a farm outage (162): never serve it again from the cache
            self._cache[key] = (now, bars)
        for k in [k for k, (t, _) in self._cache.items() if now - t > self.pacer.identical_gap]:
            del self._cache[k]
        return bars

    async def _turn(self, key: Hashable, symbol: str) -> None:
        """Wait for the historical pacer's go (briefly), or refuse with the time to retry."""
        for _ in range(20):
            verdict = self.pacer.check(key, symbol, time.monotonic())
            if verdict.wait <= 0:
                self.pacer.record(key, symbol, time.monotonic())
                return
            if verdict.wait > HISTORY_MAX_WAIT:
                self.session.count("history_refused")
                raise RequestError(f"historical pacing ({verdict.rule}): retry in {verdict.wait:.0f} s")
            await asyncio.sleep(verdict.wait)
        raise RequestError("historical pacing: too many waiting requests; retry later")
