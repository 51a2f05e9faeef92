"""Gathers gateway-health's facts, passively: socket table, supervisord, the bridge's health, watchdog heartbeat.

Never connects to the Gateway port (the socket table is read from the kernel) and never waits long: every
question has a short timeout, and a part that does not answer is reported as such.
"""

from __future__ import annotations

import ipaddress
import socket
import time

import msgspec
import psutil

from procs.watchdog.act import Supervisor
from procs.watchdog.health import Facts
from procs.watchdog.snapshot import take_snapshot
from shared.bus import REQ_SOCKETS, RequestTimeout, request_once
from shared.config import Settings
from shared.messages import HealthReport, HealthRequest, Heartbeat
from shared.service import read_heartbeat
from shared.supervisor import supervisor_socket


def is_local(host: str) -> bool:
    """Whether the Gateway's host is this machine (its LISTEN socket is then in our socket table)."""
    if host in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            ip = ipaddress.ip_address(socket.gethostbyname(host))
        except OSError:
            return False
    if ip.is_loopback or ip.is_unspecified:
        return True
    mine = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}
    return str(ip) in mine


def ask_bridge(settings: Settings, timeout: float) -> tuple[HealthReport | None, str]:
    path = settings.run_dir / REQ_SOCKETS["bridge"]
    if not path.exists():
        return None, "bridge is not running (no request socket)"
    try:
        reply = request_once(f"ipc://{path}", HealthRequest(), timeout=timeout)
    except RequestTimeout:
        return None, f"no reply within {timeout:g}s"
    if not reply.ok:
        return None, reply.error
    try:
        return msgspec.convert(reply.result, type=HealthReport), ""
    except msgspec.ValidationError as exc:
        return None, f"malformed health reply: {exc}"


def read_watchdog(settings: Settings) -> tuple[Heartbeat | None, str, int]:
    """The watchdog's last heartbeat, why there is none, and its monotonic stamp (0 when absent)."""
    return read_heartbeat(settings, "watchdog")


def gather(settings: Settings, timeout: float = 0.5) -> Facts:
    table = Supervisor(supervisor_socket(settings), timeout).table()
    pids = [p.pid for p in table.programs if p.pid] if table else []
    snap = take_snapshot(settings.ib_port, pids, all_owners=True)
    bridge, bridge_error = ask_bridge(settings, timeout)
    watchdog, watchdog_error, watchdog_mono_ns = read_watchdog(settings)
    executor, _, executor_mono_ns = read_heartbeat(settings, "executor")  # its stops: unprotected positions
    return Facts(
        now=time.time(),
        now_mono_ns=time.monotonic_ns(),
        watchdog_mono_ns=watchdog_mono_ns,
        gateway=settings.gateway,
        host=settings.ib_host,
        port=settings.ib_port,
        gateway_is_local=is_local(settings.ib_host),
        snapshot=snap,
        programs=table,
        bridge=bridge,
        bridge_error=bridge_error,
        watchdog=watchdog,
        watchdog_error=watchdog_error,
        executor=executor,
        executor_mono_ns=executor_mono_ns,
        heartbeat_seconds=settings.heartbeat_seconds,
        scan_seconds=settings.watchdog_scan_seconds,
    )
