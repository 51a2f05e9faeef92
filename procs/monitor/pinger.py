"""The dead-man's switch's pings: GET HEARTBEAT_URL while healthy, POST URL/fail with the reason when not.

HEARTBEAT_URL is a secret (the check's id is its only password): it is never logged or shown, only
"ok"/"fail" and the reason. A ping that fails is counted and tried again next period, never sooner: the
outside service alarms on missing pings by itself, which is the point.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from typing import Protocol

from procs.monitor.deadman import fail_url
from procs.monitor.metrics import MonitorFacts
from shared.log import log_every

PING_TIMEOUT = 10.0


class Pinged(Protocol):
    facts: MonitorFacts
    deadman_state: str
    poll_seconds: float

    def deadman_verdict(self) -> tuple[bool, str]: ...


def ping(url: str, reason: str = "", timeout: float = PING_TIMEOUT) -> str:
    """One ping (blocking): "" when the service took it, else why not."""
    if reason:
        req = urllib.request.Request(fail_url(url), data=reason.encode()[:10_000], method="POST")
    else:
        req = urllib.request.Request(url, method="GET")
    req.add_header("User-Agent", "ibstack-monitor")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the operator's own URL
            resp.read(1024)
            return "" if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return type(exc).__name__


async def ping_forever(mon: Pinged, url: str, period: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):  # the first verdict needs one round of polls and heartbeats
        await asyncio.wait_for(stop.wait(), min(period, 2 * mon.poll_seconds + 1))
    while not stop.is_set():
        started = time.monotonic()
        healthy, reason = mon.deadman_verdict()
        error = await asyncio.to_thread(ping, url, "" if healthy else reason)
        if error:
            mon.facts.deadman["error"] += 1
            mon.deadman_state = f"ping failed ({error})"
            log_every("monitor.deadman", 3600.0, "WARNING", f"dead-man's switch ping failed: {error}")
        elif healthy:
            mon.facts.deadman["ok"] += 1
            mon.facts.deadman_last_ok_ns = time.time_ns()
            mon.deadman_state = "ok"
        else:
            mon.facts.deadman["fail"] += 1
            mon.deadman_state = f"fail: {reason}"
        left = period - (time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.5, left))
