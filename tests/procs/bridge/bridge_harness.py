"""Harness for the bridge's integration tests: the real bridge session (ib_async over real loopback TCP) run
in-process against the real gateway simulator, with everything it published recorded, and bounded waits.

Every bridge started here is stopped (its one orderly close) when the `live_bridge` block exits, even on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from procs.bridge.api import BridgeApi
from procs.bridge.session import GatewaySession
from procs.bridge.stream import Streams
from shared.config import Settings, load_settings
from shared.messages import Message
from tests.support.wait import wait_for_async

T = TypeVar("T")

# Fast but honest: a heartbeat every 0.3 s, STALLED after 0.8 s unanswered, backoff capped at 1 s.
FAST: dict[str, Any] = dict(
    symbols="AAPL,MSFT",
    bridge_heartbeat_seconds=0.3,
    bridge_heartbeat_timeout=0.8,
    reconnect_backoff_max=1.0,
    ib_connect_timeout=5.0,
)


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """One scenario on a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def bridge_settings(port: int, **overrides: Any) -> Settings:
    """Settings for a bridge on the simulator at `port` (the caller's stack_env fixture isolates var/)."""
    return load_settings(ib_port=port, **{**FAST, **overrides})


async def wait_until(check: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    """tests/support/wait.py's wait_for_async, in this harness's argument order."""
    return await wait_for_async(what, check, timeout, interval=0.01)


@dataclass
class LiveBridge:
    session: GatewaySession
    api: BridgeApi
    streams: Streams
    published: list[tuple[float, str, Message]] = field(default_factory=list)

    def state(self) -> str:
        return self.session.status().state

    async def wait_state(self, state: str, timeout: float = 5.0) -> float:
        """Seconds it took to reach `state`."""
        t0 = time.monotonic()
        await wait_until(
            lambda: self.state() == state, f"state {state} (now {self.session.status()})", timeout
        )
        return time.monotonic() - t0

    def messages(self, prefix: str, since: float = 0.0) -> list[Any]:
        return [m for t, topic, m in self.published if topic.startswith(prefix) and t >= since]

    async def wait_bars(self, symbols: set[str], since: float, timeout: float = 5.0) -> None:
        def seen() -> bool:
            return symbols <= {b.symbol for b in self.messages("bar.", since)}

        await wait_until(seen, f"bars of {sorted(symbols)}", timeout)


@contextlib.asynccontextmanager
async def live_bridge(settings: Settings, *, stable_seconds: float = 10.0) -> AsyncIterator[LiveBridge]:
    session = GatewaySession(settings, stable_seconds=stable_seconds)
    bridge = LiveBridge(session=session, api=BridgeApi(session), streams=None)  # type: ignore[arg-type]
    bridge.streams = Streams(
        session, lambda topic, msg: bridge.published.append((time.monotonic(), topic, msg))
    )
    stop = asyncio.Event()
    task = asyncio.create_task(session.run(stop))
    try:
        yield bridge
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 10)
        finally:
            session.close()
