"""bin/gateway-health's line about the monitor: its state and the last successful alert delivery. Passive:
it reads the monitor's heartbeat file only (no socket, no request), and never shows a URL (they are secrets).
"""

from __future__ import annotations

import time

from procs.watchdog.health import Check, Facts
from shared.config import Settings
from shared.messages import Heartbeat
from shared.service import read_heartbeat


def read_monitor(settings: Settings) -> tuple[Heartbeat | None, int, str]:
    """The monitor's last heartbeat, its monotonic stamp, and why there is none."""
    hb, error, mono_ns = read_heartbeat(settings, "monitor")
    return hb, mono_ns, error


def _ago(seconds: float) -> str:
    s = max(0.0, seconds)
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.1f}h ago"


def monitor_check(
    f: Facts, hb: Heartbeat | None, mono_ns: int, error: str, now_mono_ns: int | None = None
) -> Check:
    name = "monitor"
    in_stack = f.programs is None or f.programs.by_name("monitor") is not None
    if hb is None:
        if not in_stack:
            return Check(name, "OK", "not part of this stack (no monitor in supervisord)")
        return Check(name, "WARNING", error, "`supervisorctl start monitor`; read var/log/monitor.log")
    now_mono = now_mono_ns if now_mono_ns is not None else time.monotonic_ns()
    age = (now_mono - mono_ns) / 1e9 if mono_ns else f.now - hb.ts_ns / 1e9
    if age > max(3 * f.heartbeat_seconds, 10.0):
        return Check(name, "WARNING", f"last heartbeat {_ago(age)}", "`supervisorctl restart monitor`")
    d = hb.detail
    sinks = d.get("sinks") or []
    last = int(d.get("last_delivery_ns") or 0)
    delivered = f"last delivery {_ago(f.now - last / 1e9)}" if last else "no delivery yet"
    summary = (
        f"{hb.state}, {len(sinks)} sink(s) ({', '.join(sinks) or 'none'}), {delivered}, "
        f"{d.get('unsent', 0)} unsent, dead-man {d.get('deadman', 'off')}, metrics {d.get('metrics') or '-'}"
    )
    failing = d.get("sinks_failing") or []
    if failing:
        return Check(
            name,
            "WARNING",
            f"{summary}; failing: {', '.join(failing)}",
            "`bin/trader test-alert`; check the service and ALERT_URLS in .env",
        )
    if not sinks:
        return Check(name, "OK", summary + " (no ALERT_URLS: alerts stay on this machine)")
    if hb.state != "RUNNING":
        return Check(name, "WARNING", summary, "read var/log/monitor.log")
    return Check(name, "OK", summary)
