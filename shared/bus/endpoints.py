"""Where the bus's sockets live and how topics match: endpoint names, the one zmq context, topic prefixes.

It must never open a connection itself: it only names endpoints (ipc:// under var/run/, mode 0700).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from shared.config import Settings
from shared.programs import PUB_SOCKETS, REQ_SOCKETS

HWM = 100_000  # bursts (warm-up, reconnect replays) must not hit the silent PUB drop at the default 1000

__all__ = [
    "HWM",
    "PUB_SOCKETS",
    "REQ_SOCKETS",
    "bind",
    "endpoint",
    "new_context",
    "pub_endpoint",
    "req_endpoint",
    "stream_of",
    "topic_matches",
]


def endpoint(settings: Settings, name: str) -> str:
    """ipc:// endpoint of a named socket under var/run/ (the directory is created mode 0700)."""
    run = settings.run_dir
    run.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(run, 0o700)
    return f"ipc://{run / name}"


def pub_endpoint(settings: Settings, program: str) -> str:
    return endpoint(settings, PUB_SOCKETS[program])


def req_endpoint(settings: Settings, program: str) -> str:
    return endpoint(settings, REQ_SOCKETS[program])


def new_context() -> zmq.asyncio.Context:
    """The process's one zmq context; every socket it makes defaults to LINGER 0."""
    ctx = zmq.asyncio.Context()
    ctx.setsockopt(zmq.LINGER, 0)
    return ctx


def bind(sock: zmq.Socket[Any], ep: str) -> None:
    if ep.startswith("ipc://"):
        Path(ep.removeprefix("ipc://")).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    sock.bind(ep)


def topic_matches(topic: str, prefix: str) -> bool:
    """`bar.AAPL` matches prefix `bar.` and `bar.AAPL`, never `bar.AAPLX` (zmq alone matches raw bytes)."""
    if prefix == "" or prefix.endswith("."):
        return topic.startswith(prefix)
    return topic == prefix or topic.startswith(prefix + ".")


def stream_of(topic: str) -> str:
    """A topic's stream: `bar.AAPL` -> `bar`, `fill` -> `fill`. Messages are numbered per stream too."""
    return topic.partition(".")[0]
