"""Wires the bridge together inside the service harness: the Gateway session, its streams, the request API.

No logic of its own: everything it starts runs until `svc.stop` is set, and the session is closed once at exit.
"""

from __future__ import annotations

import asyncio
import contextlib

from procs.bridge.api import BridgeApi
from procs.bridge.session import GatewaySession
from procs.bridge.stream import Streams
from shared.bus import req_endpoint
from shared.service import Service


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


async def main(svc: Service) -> None:
    session = GatewaySession(svc.settings)
    streams = Streams(session, svc.publish)
    api = BridgeApi(session)
    server = svc.bus.server(req_endpoint(svc.settings, "bridge"), "bridge", api.handle, quick=api.answer_now)
    # waiting orders are placed between two of the Gateway's decoded messages, not after the whole read
    session.broker.look_between_messages(server.take_waiting)
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
