"""Wires the bridge together inside the service harness: the Gateway session, its streams, the request API.

No logic of its own: everything it starts runs until `svc.stop` is set, and the session is closed once at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from ib_async import IB

from procs.bridge.api import BridgeApi
from procs.bridge.session import GatewaySession
from procs.bridge.stream import Streams
from shared.bus import BusServer, req_endpoint
from shared.service import Service

LOOK_EVERY = 100e-6  # seconds of decoding between two looks at the request socket


async def _mirror_health(svc: Service, session: GatewaySession, api: BridgeApi) -> None:
    """Copy the session's state into the harness heartbeat (what the watchdog and gateway-health read)."""
    while not svc.stop.is_set():
        report = await api.health()
        svc.set_state(report.state)
        svc.counters.update(report.counters)
        svc.detail.update(
            reason=report.reason,
            heartbeat_rtt_ms=report.heartbeat_rtt_ms,
            last_bar_age_s=report.last_bar_age_s,
            subscriptions=report.subscriptions,
            reconnects=report.reconnects,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(svc.stop.wait(), min(1.0, svc.settings.heartbeat_seconds))


def orders_between_messages(ib: IB, server: BusServer, every: float = LOOK_EVERY) -> None:
    """Let waiting orders jump the queue of the Gateway's messages.

    ib_async decodes everything one read brought in a single callback: the ~8 replies to one order (two openOrder
    among them) take about a millisecond, and the next order of a burst used to wait behind them. Between two
    messages, at most every `every` seconds of decoding (a look costs ~2 us; a bar burst is 100 small messages),
    the request socket is looked at, and orders it holds are placed on the spot by the quick path, where
    ib_async's state is whole."""
    decoder = ib.client.decoder
    interpret = decoder.interpret
    looked = 0.0

    def interpret_then_take_orders(fields: list[str]) -> None:
        nonlocal looked
        interpret(fields)  # type: ignore[no-untyped-call]
        now = time.perf_counter()
        if now - looked >= every:
            looked = now
            server.take_waiting()

    decoder.interpret = interpret_then_take_orders  # type: ignore[method-assign]


async def main(svc: Service) -> None:
    session = GatewaySession(svc.settings)
    streams = Streams(session, svc.publish)
    api = BridgeApi(session)
    server = svc.bus.server(req_endpoint(svc.settings, "bridge"), "bridge", api.handle, quick=api.answer_now)
    orders_between_messages(session.ib, server)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(session.run(svc.stop))
            tasks.create_task(server.serve(svc.stop))
            tasks.create_task(streams.repeat_status(svc.stop))
            tasks.create_task(_mirror_health(svc, session, api))
    finally:
        svc.stop.set()
        server.close()
        session.close()
