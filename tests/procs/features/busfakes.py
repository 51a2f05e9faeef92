"""In-process stand-ins for the feature and strategy unit tests: a fake bridge and a Service on the in-memory bus.

The fake bridge is a real publisher and request server of the bus it is given (the tests give a MemoryBus, the
same bus the program under test gets); only the history it serves and the bars it publishes are made up.
Import as `tests.procs.features.busfakes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from shared.bus import RequestError
from shared.bus.factory import Bus
from shared.bus.publish import Stamper
from shared.config import Settings
from shared.messages import Bar, GatewayStatus, HistoryRequest
from shared.service import Service


class FakeBridge:
    """Publishes bars and gateway status; answers HistoryRequest from a dict of bars per symbol."""

    def __init__(self, bus: Bus, history: dict[str, list[Bar]], name: str = "fb") -> None:
        self.pub_ep, self.req_ep = f"inproc://{name}-pub", f"inproc://{name}-req"
        self.history = history
        self.publisher = bus.publisher(self.pub_ep, "bridge")
        self.server = bus.server(
            self.req_ep, "bridge", self._answer
        )  # what the contract says a bridge serves
        self.requests: list[HistoryRequest] = []
        self.stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _answer(self, req: Any) -> Any:
        if not isinstance(req, HistoryRequest):
            raise RequestError(f"fake bridge: {type(req).__name__} not served")
        self.requests.append(req)
        return self.history.get(req.symbol, [])

    def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(self.stop))

    def status(self, clock_ns: int, state: str = "READY") -> None:
        self.publisher.publish("gateway", GatewayStatus(state=state, gateway_time_ns=clock_ns))  # type: ignore[arg-type]

    def bar(self, bar: Bar) -> None:
        self.publisher.publish(f"bar.{bar.symbol}", bar)

    def new_epoch(self) -> None:
        """Look like a restarted bridge on the wire: a new epoch, seq counting from 1 again."""
        assert isinstance(self.publisher, Stamper)
        self.publisher.epoch = f"bridge-restarted-{time.monotonic_ns()}"
        self.publisher.seq = 0
        self.publisher.stream_seqs.clear()

    async def close(self) -> None:
        self.stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.server.close()
        self.publisher.close()


def make_service(bus: Bus, program: str, settings: Settings) -> Service:
    """A Service like run_service builds, on `bus`, publishing on inproc://<program>-pub."""
    publisher = bus.publisher(f"inproc://{program}-pub", program)
    return Service(program=program, settings=settings, bus=bus, stop=asyncio.Event(), publisher=publisher)


async def until(
    what: str, check: Callable[[], bool], timeout: float = 10.0, tick: Callable[[], None] | None = None
) -> None:
    """Poll `check` (calling `tick` between polls, e.g. to re-publish a status) until true; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        if tick is not None:
            tick()
        await asyncio.sleep(0.02)


async def stopped(svc: Service, task: Awaitable[None]) -> None:
    svc.stop.set()
    await asyncio.wait_for(task, 5.0)
    if svc.publisher is not None:
        svc.publisher.close()
