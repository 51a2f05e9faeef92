"""The alert sinks: one Apprise URL each, each with its own queue, task and thread; retried with backoff.

ALERT_URLS is a secret (bot tokens, passwords): no URL is ever logged, printed or put in a metric; a sink is
named by its scheme and position (`json#1`). A URL Apprise cannot parse is a ConfigError naming ALERT_URLS with
the URL masked (the program exits 78). A sink that refuses or hangs is retried with a growing pause in its own
task, counted, and after FAIL_WARN_AFTER failures in a row one local WARNING per hour: it never crashes the
monitor, never spins, and never holds up another sink, let alone trading (trading never waits for the monitor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import apprise

from procs.monitor.journal import AlertRecord
from shared.config import ConfigError
from shared.log import log_every

SEND_TIMEOUT = (
    30.0  # longest one send may take before it counts as failed (Apprise's own timeouts are shorter)
)
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
FAIL_WARN_AFTER = 5
FAIL_WARN_EVERY = 3600.0
_SPLIT = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")  # spaces, or a comma before the next URL
# Apprise's own log lines quote the URLs (tokens, passwords): not one of them may reach a log file or stderr
logging.getLogger("apprise").setLevel(logging.CRITICAL + 10)
logging.getLogger("apprise").disabled = True
_NOTIFY_TYPE = {
    "INFO": apprise.NotifyType.INFO,
    "WARNING": apprise.NotifyType.WARNING,
    "CRITICAL": apprise.NotifyType.FAILURE,
}


def mask_url(url: str) -> str:
    """`tgram://123:ABC/456` -> `tgram://****`: the channel's kind, nothing of its secret."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://****" if sep else "****"


def split_urls(text: str) -> list[str]:
    return [u for u in _SPLIT.split(text.strip()) if u]


@dataclass
class Sink:
    name: str
    plugin: Any  # an Apprise plugin instance
    pool: ThreadPoolExecutor
    queue: asyncio.Queue[AlertRecord] = field(default_factory=asyncio.Queue)
    delivered: int = 0
    failures: int = 0
    failing_in_a_row: int = 0
    last_success_ns: int = 0
    last_error: str = ""
    busy: bool = False

    def state(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "failures": self.failures,
            "failing_in_a_row": self.failing_in_a_row,
            "last_success_ns": self.last_success_ns,
            "queued": self.queue.qsize() + (1 if self.busy else 0),
            "last_error": self.last_error,
        }


def parse_sinks(text: str) -> list[Sink]:
    """One Sink per Apprise URL in ALERT_URLS; ConfigError (masked) for one Apprise cannot use."""
    sinks = []
    for i, url in enumerate(split_urls(text), start=1):
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin is None:
            raise ConfigError(
                f"setting ALERT_URLS: URL #{i} ({mask_url(url)}) is not an Apprise URL it can use; see "
                "https://github.com/caronc/apprise/wiki for the form of each service; fix it in .env"
            )
        scheme = url.partition("://")[0].lower()
        sinks.append(
            Sink(f"{scheme}#{i}", plugin, ThreadPoolExecutor(1, thread_name_prefix=f"sink-{scheme}{i}"))
        )
    return sinks


def send_blocking(plugin: Any, record: AlertRecord) -> bool:
    return bool(
        plugin.notify(
            body=record.text,
            title=f"[{record.severity}] {record.title}",
            notify_type=_NOTIFY_TYPE.get(record.severity, apprise.NotifyType.INFO),
        )
    )


async def send_once(sink: Sink, record: AlertRecord, timeout: float = SEND_TIMEOUT) -> str:
    """One attempt in the sink's own thread: "" when delivered, else why not (never raises)."""
    loop = asyncio.get_running_loop()
    try:
        ok = await asyncio.wait_for(
            loop.run_in_executor(sink.pool, send_blocking, sink.plugin, record), timeout
        )
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except Exception as exc:  # a plugin bug must cost one failed attempt, never the monitor
        return f"{type(exc).__name__}: {exc}"[:200]
    return "" if ok else "the service refused or did not answer (Apprise said no)"


def late(record: AlertRecord, now_ns: int) -> AlertRecord:
    """An alert sent long after it was raised says so."""
    minutes = (now_ns - record.ts_ns) / 60e9
    if minutes < 2:
        return record
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.ts_ns / 1e9))
    text = f"(late: raised {stamp}, {minutes:.0f} min ago)\n{record.text}"
    return AlertRecord(**{**_fields(record), "text": text})


def _fields(record: AlertRecord) -> dict[str, Any]:
    return {f: getattr(record, f) for f in record.__struct_fields__}


async def deliver_forever(
    sink: Sink,
    stop: asyncio.Event,
    on_delivered: Callable[[Sink, AlertRecord], None],
    backoff_first: float = BACKOFF_FIRST,
) -> None:
    """Send the sink's queue in order; an alert that fails is retried (backoff) before the next one goes."""
    while not stop.is_set():
        try:
            record = await asyncio.wait_for(sink.queue.get(), 1.0)
        except TimeoutError:
            continue
        sink.busy = True
        pause = backoff_first
        while not stop.is_set():
            error = await send_once(sink, late(record, time.time_ns()))
            if not error:
                sink.delivered += 1
                sink.failing_in_a_row = 0
                sink.last_success_ns = time.time_ns()
                on_delivered(sink, record)
                break
            sink.failures += 1
            sink.failing_in_a_row += 1
            sink.last_error = error
            if sink.failing_in_a_row >= FAIL_WARN_AFTER:
                log_every(
                    f"monitor.sink-failing.{sink.name}",
                    FAIL_WARN_EVERY,
                    "WARNING",
                    f"alert sink {sink.name} failed {sink.failing_in_a_row} times in a row ({error}); "
                    f"alerts wait for it in var/log/alerts.jsonl; check the service or ALERT_URLS",
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            pause = min(BACKOFF_MAX, pause * 2)
        sink.busy = False


def close_sinks(sinks: list[Sink]) -> None:
    for sink in sinks:
        sink.pool.shutdown(wait=False, cancel_futures=True)
