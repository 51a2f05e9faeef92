"""The pure core of bin/gateway-health: facts in, checks with Nagios statuses and the human's remedy out.

No I/O: probe.py gathers the facts without ever connecting to the Gateway port. Every check that is not OK
carries a line saying what to do. Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Literal

from procs.watchdog.model import GATEWAY_REMEDY, ProgramTable, Snapshot
from shared.messages import HealthReport, Heartbeat

Status = Literal["OK", "WARNING", "CRITICAL", "UNKNOWN"]
EXIT_CODES: dict[Status, int] = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
# a known problem outranks not knowing: CRITICAL > WARNING > UNKNOWN > OK
_RANK: dict[Status, int] = {"OK": 0, "UNKNOWN": 1, "WARNING": 2, "CRITICAL": 3}
_BRIDGE_CRITICAL = frozenset({"STALLED", "WAITING_FOR_HUMAN", "STOPPED"})


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    summary: str
    remedy: str = ""


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything gateway-health read, each part possibly missing."""

    now: float
    gateway: str  # sim | ib
    host: str
    port: int
    gateway_is_local: bool
    snapshot: Snapshot
    programs: ProgramTable | None
    bridge: HealthReport | None
    bridge_error: str = ""
    watchdog: Heartbeat | None = None
    watchdog_error: str = ""
    heartbeat_seconds: float = 2.0
    scan_seconds: float = 5.0
    # the host's monotonic clock now and when the watchdog's heartbeat file was written (0: unknown): ages
    # from these do not move when the wall clock steps
    now_mono_ns: int = 0
    watchdog_mono_ns: int = 0
    # the executor's last heartbeat (its `unprotected` and `reconcile_seconds`): None = not read, no stop check
    executor: Heartbeat | None = None
    executor_mono_ns: int = 0


def checks(f: Facts) -> list[Check]:
    return [
        _listener(f),
        *_close_waits(f),
        _bridge(f),
        *_programs(f),
        _watchdog(f),
        *_stops(f),
    ]


def overall(found: list[Check]) -> Status:
    return max((c.status for c in found), key=_RANK.__getitem__, default="UNKNOWN")


def _listener(f: Facts) -> Check:
    name = "gateway listener"
    snap = f.snapshot
    if not f.gateway_is_local:
        return Check(
            name, "OK", f"the Gateway is on {f.host}:{f.port}; its listener is not visible from here"
        )
    if not snap.table_readable:
        return Check(
            name,
            "UNKNOWN",
            "the socket table cannot be read",
            "run gateway-health as root or the stack's user",
        )
    if not snap.listening:
        start = (
            "`supervisorctl start gateway_sim`" if f.gateway == "sim" else "start IB Gateway/TWS and log in"
        )
        return Check(name, "CRITICAL", f"nothing listens on port {f.port}", f"{start}; check IB_PORT in .env")
    owners = (
        ", ".join(o.describe() for p in sorted(snap.listen_pids) if (o := snap.owner(p)))
        or "owner not readable"
    )
    return Check(name, "OK", f"port {f.port} LISTEN by {owners}")


def _close_waits(f: Facts) -> Iterator[Check]:
    snap = f.snapshot
    if not snap.table_readable:
        return
    gateway_side = snap.by_side("gateway")
    if gateway_side:
        yield Check(
            "gateway CLOSE_WAIT",
            "WARNING",
            f"the Gateway holds {len(gateway_side)} dead API socket(s) in CLOSE_WAIT",
            GATEWAY_REMEDY,
        )
    else:
        yield Check("gateway CLOSE_WAIT", "OK", "none")
    client_side = snap.by_side("client")
    if not client_side:
        yield Check("client CLOSE_WAIT", "OK", "none")
    for cw in client_side:
        owner = snap.owner(cw.pid)
        program = f.programs.by_pid(cw.pid) if f.programs and cw.pid else None
        if owner is None:
            yield Check(
                "client CLOSE_WAIT",
                "WARNING",
                f"{cw.describe()} held by a process that cannot be read",
                f"find it with `sudo ss -tanp state close-wait '( dport = :{f.port} )'` and stop it if it is yours",
            )
        elif program is not None:
            yield Check(
                "client CLOSE_WAIT",
                "WARNING",
                f"{program.name} ({owner.describe()}) holds a dead session {cw.describe()}",
                f"the watchdog restarts it within two scans; if it stays: `supervisorctl restart {program.namespec}`",
            )
        else:
            yield Check(
                "client CLOSE_WAIT",
                "WARNING",
                f"{owner.describe()}, not one of our programs, holds a dead session {cw.describe()}",
                "stop that process yourself if it is yours and done; never kill the Gateway",
            )


def _bridge(f: Facts) -> Check:
    r = f.bridge
    if r is None:
        return Check(
            "bridge",
            "CRITICAL",
            f"no health answer ({f.bridge_error or 'no reply'})",
            "`supervisorctl status bridge`; read var/log/bridge.log",
        )
    rtt = f"{r.heartbeat_rtt_ms:.0f} ms" if r.heartbeat_rtt_ms is not None else "-"
    bar = f"{r.last_bar_age_s:.0f} s ago" if r.last_bar_age_s is not None else "-"
    summary = (
        f"{r.state}: server v{r.server_version}, client id {r.client_id}, accounts {','.join(r.accounts) or '-'}, "
        f"rtt {rtt}, last bar {bar}, {r.subscriptions} subscriptions"
    )
    if r.reason:
        summary += f" ({r.reason})"
    if r.state == "READY":
        return Check("bridge", "OK", summary)
    status: Status = "CRITICAL" if r.state in _BRIDGE_CRITICAL else "WARNING"
    return Check("bridge", status, summary, r.remedy or "wait for it to reconnect; read var/log/bridge.log")


def _programs(f: Facts) -> Iterator[Check]:
    if f.programs is None:
        yield Check(
            "supervisord",
            "CRITICAL",
            "not answering",
            "start the stack with `make run`; if it is running, read var/log/supervisord.log",
        )
        return
    for p in f.programs.programs:
        name = f"program {p.name}"
        if p.state == "RUNNING":
            yield Check(name, "OK", f"RUNNING, pid {p.pid}, up {_duration(f.now - p.start)}")
        elif p.name == "gateway_sim" and f.gateway == "ib":
            yield Check(name, "OK", f"{p.state} (not used with GATEWAY=ib)")
        elif p.state == "STARTING":
            yield Check(name, "WARNING", "STARTING", f"wait; if it stays, read var/log/{p.name}.log")
        elif p.state == "STOPPED":  # only an explicit stop (or autostart=false) leaves a program here
            yield Check(name, "WARNING", "STOPPED", f"`supervisorctl start {p.namespec}` if it should run")
        else:
            yield Check(
                name,
                "CRITICAL",
                p.state,
                f"read var/log/{p.name}.log, fix the cause, then `supervisorctl start {p.namespec}`",
            )


def _watchdog(f: Facts) -> Check:
    hb = f.watchdog
    if hb is None:
        return Check(
            "watchdog", "WARNING", f.watchdog_error or "no heartbeat file", "`supervisorctl start watchdog`"
        )
    age = _age(f, f.watchdog_mono_ns, hb.ts_ns)
    if age > max(3 * f.heartbeat_seconds, 10.0):
        return Check(
            "watchdog",
            "WARNING",
            f"last heartbeat {_duration(age)} ago",
            "`supervisorctl restart watchdog`; read var/log/watchdog.log",
        )
    d = hb.detail
    scanned = d.get("last_scan_ns")
    scan_age = _age(f, int(d.get("last_scan_mono_ns") or 0), scanned) if scanned else age
    summary = f"{hb.state}, last scan {_duration(scan_age) + ' ago' if scanned else 'not yet'}"
    summary += f", {d.get('restarts', 0)} restart(s)"
    if scan_age > 3 * f.scan_seconds + 5:
        return Check("watchdog", "WARNING", summary + ": scans are late", "read var/log/watchdog.log")
    if d.get("dry_run"):
        summary += ", DRY RUN"
    given_up = d.get("handed_off") or []
    if given_up:
        return Check(
            "watchdog",
            "CRITICAL",
            f"{summary}; gave up restarting {', '.join(given_up)} (rate limit)",
            "read those programs' logs, fix the cause, then `supervisorctl restart <program>`",
        )
    if hb.state != "WATCHING":
        return Check("watchdog", "WARNING", summary, "read var/log/watchdog.log")
    return Check("watchdog", "OK", summary)


def _stops(f: Facts) -> Iterator[Check]:
    """Protective stops: WARNING when a position has had no stop at the broker for longer than one reconciliation
    (the executor re-creates a missing stop at its next reconciliation; longer means it cannot)."""
    hb = f.executor
    if hb is None:
        return  # the executor's heartbeat was not read: nothing known either way
    d = hb.detail
    if "unprotected" not in d:
        return  # an executor without protective stops
    budget = float(d.get("reconcile_seconds") or 60.0)
    if _age(f, f.executor_mono_ns, hb.ts_ns) > max(3 * f.heartbeat_seconds, 10.0):
        yield Check("protective stops", "UNKNOWN", "the executor's heartbeat is old: stops not known",
                    "`supervisorctl status executor`; read var/log/executor.log")  # fmt: skip
        return
    raw = d.get("unprotected") or {}
    late = {str(s): float(t) for s, t in raw.items() if float(t) > budget} if isinstance(raw, dict) else {}
    if not late:
        waiting = f", {len(raw)} being placed" if raw else ""
        yield Check("protective stops", "OK", f"every position has its stop{waiting}")
        return
    which = ", ".join(f"{s} for {_duration(t)}" for s, t in sorted(late.items()))
    yield Check(
        "protective stops",
        "WARNING",
        f"position without a protective stop longer than one reconciliation ({budget:g}s): {which}",
        "`bin/trader positions` shows each stop; read var/log/executor.log for stop.unprotected (no contract "
        "details, a refused stop) and `bin/trader alerts`; place a stop in TWS or `bin/trader flatten SYMBOL` "
        "until it is fixed",
    )


def _age(f: Facts, mono_ns: int, wall_ns: int) -> float:
    """Seconds since a stamp: on the monotonic clock when both ends have it, else on the wall clock."""
    if mono_ns and f.now_mono_ns:
        return (f.now_mono_ns - mono_ns) / 1e9
    return f.now - wall_ns / 1e9


def _duration(seconds: float) -> str:
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.1f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def render_table(f: Facts, found: list[Check]) -> str:
    status = overall(found)
    lines = [f"gateway-health: {status} (GATEWAY={f.gateway}, {f.host}:{f.port})"]
    width = max(len(c.name) for c in found)
    for c in found:
        lines.append(f"  {c.status:<8} {c.name:<{width}}  {c.summary}")
        if c.status != "OK" and c.remedy:
            lines.append(f"  {'':<8} {'':<{width}}  -> {c.remedy}")
    return "\n".join(lines)


def render_json(f: Facts, found: list[Check]) -> str:
    snap = f.snapshot
    status = overall(found)
    doc = {
        "status": status,
        "exit_code": EXIT_CODES[status],
        "gateway": {"mode": f.gateway, "host": f.host, "port": f.port},
        "listen": {
            "listening": snap.listening,
            "owners": [{"pid": p, "name": o.name} for p in sorted(snap.listen_pids) if (o := snap.owner(p))],
        },
        "close_wait": {
            "gateway_side": len(snap.by_side("gateway")),
            "client_side": [
                {
                    "socket": cw.describe(),
                    "pid": cw.pid,
                    "name": (o.name if (o := snap.owner(cw.pid)) else None),
                }
                for cw in snap.by_side("client")
            ],
        },
        "checks": [asdict(c) for c in found],
    }
    return json.dumps(doc, indent=2)
