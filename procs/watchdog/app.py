"""The watchdog program's wiring: heartbeats off every stream, a scan every interval, alerts onto its own stream.

The Watchdog (core.py) holds what is remembered between scans and decide.py decides; this only connects them
to the bus and supervisord and runs the loops. Blocking work (psutil, XML-RPC) runs in a thread so the heartbeat
keeps flowing. It never connects to the Gateway port and never signals what decide() spared.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from loguru import logger

from procs.watchdog.act import Supervisor
from procs.watchdog.core import CONFIRM_SECONDS, Watchdog, rules_from
from shared.bus import PUB_SOCKETS, BusSubscriber, pub_endpoint
from shared.log import log_every
from shared.service import Service
from shared.supervisor import supervisor_socket


async def listen_for_heartbeats(sub: BusSubscriber, wd: Watchdog, stop: asyncio.Event) -> None:
    while not stop.is_set():
        got = await sub.recv(timeout=0.5)
        wd.undecodable = sub.stats.malformed
        if got is not None:
            wd.heard(got)


async def runforever(svc: Service, wd: Watchdog, scan_seconds: float) -> None:
    """Scan every `scan_seconds` until svc.stop; an error in one scan is logged and the next one runs."""
    while not svc.stop.is_set():
        started = time.monotonic()
        try:
            for decision in await asyncio.to_thread(wd.scan, dict(wd.heartbeats)):
                try:
                    outcome = await asyncio.to_thread(wd.act, decision)
                except Exception as exc:  # a failed restart is reported like any other outcome
                    outcome = f"failed: {exc!r}"
                svc.publish("alert", wd.recorded(decision, outcome))
            svc.count("scans")
            degraded = wd.last.get("supervisord") == "down" or not wd.last.get("table_readable", True)
            svc.set_state("DEGRADED" if degraded else "WATCHING")
        except Exception as exc:  # one bad scan must not end the watchdog
            svc.count("scan_errors")
            log_every("watchdog.scan-error", 60.0, "ERROR", f"scan failed: {exc!r}")
            logger.opt(exception=exc).debug("scan failed")
        svc.detail = wd.detail()
        interval = min(scan_seconds, CONFIRM_SECONDS) if wd.memory.pending else scan_seconds
        left = interval - (time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(svc.stop.wait(), max(0.05, left))


async def main(svc: Service) -> None:
    settings = svc.settings
    wd = Watchdog(
        rules_from(settings),
        Supervisor(supervisor_socket(settings)),
        dry_run=settings.watchdog_dry_run,
    )
    endpoints = [pub_endpoint(settings, p) for p in PUB_SOCKETS if p != "watchdog"]
    sub = svc.bus.subscriber(endpoints, ["heartbeat."])
    listener = asyncio.create_task(listen_for_heartbeats(sub, wd, svc.stop))
    svc.set_state("WATCHING")
    logger.info(
        "watching port {} every {:g}s (dry run: {})",
        settings.ib_port,
        settings.watchdog_scan_seconds,
        wd.dry_run,
    )
    try:
        await runforever(svc, wd, settings.watchdog_scan_seconds)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        sub.close()
