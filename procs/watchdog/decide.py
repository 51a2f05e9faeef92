"""The watchdog's pure core: from one socket snapshot, supervisord's table and the heartbeats, what to do.

Plain values in, plain values out: no clock, no psutil, no XML-RPC. Every time it is given (`now`, heartbeat
receipts) is the watchdog's monotonic clock; supervisord's wall-clock start times are never used for an age.
It may decide RESTART only for one of our supervisord programs that is a Python process of our user, never
the simulator, supervisord or the watchdog, never Java or the LISTEN owner of the Gateway port, and never
because of a Gateway-side socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from procs.watchdog.model import (
    GATEWAY_REMEDY,
    PROTECTED_PROGRAMS,
    CloseWait,
    Decision,
    HeartbeatSeen,
    Memory,
    Owner,
    ProgramInfo,
    ProgramTable,
    Rules,
    Snapshot,
)
from shared.programs import BY_NAME

CONNECTING_STATES = frozenset({"STARTING", "CONNECTING", "SYNCING"})


@dataclass(slots=True)
class _Scan:
    """Working state of one decision pass (local to decide())."""

    snap: Snapshot
    table: ProgramTable | None
    rules: Rules
    memory: Memory
    now: float
    candidates: dict[str, Decision] = field(default_factory=dict)  # program -> first reason to restart it
    reports: dict[str, tuple[str, Decision]] = field(default_factory=dict)  # topic -> (signature, decision)
    pending: set[str] = field(default_factory=set)  # programs whose dead session awaits its confirming scan
    first_seen: dict[str, tuple[int, float]] = field(default_factory=dict)  # program -> (pid, first seen)


def decide(
    snap: Snapshot,
    table: ProgramTable | None,
    heartbeats: Mapping[str, HeartbeatSeen],
    memory: Memory,
    rules: Rules,
    now: float,
    listening_since: float,
) -> tuple[list[Decision], Memory]:
    """Decisions for this scan and the memory to pass to the next one."""
    scan = _Scan(snap, table, rules, memory, now)
    scan.first_seen = _first_seen(scan)
    seen = _client_close_waits(scan) if snap.table_readable else _table_unreadable(scan)
    _gateway_close_waits(scan)
    _supervisord_reachable(scan)
    _heartbeats(scan, heartbeats, listening_since)
    awaiting = _comebacks(scan)
    restarts, new_memory = _rate_limited(scan)
    for d in restarts:
        if d.action == "RESTART" and d.pid:
            awaiting[str(d.evidence["program"])] = (d.pid, now)
    reports = [d for topic, (sig, d) in scan.reports.items() if memory.reports.get(topic, "") != sig]
    current = {topic: sig for topic, (sig, _) in scan.reports.items()}
    pending = frozenset(scan.pending)
    return restarts + reports, replace(
        new_memory,
        seen=seen,
        reports=current,
        pending=pending,
        first_seen=scan.first_seen,
        awaiting=awaiting,
    )


def forget_restart(memory: Memory, program: str) -> Memory:
    """The restart of `program` ended nothing (dry run, refused, skipped): do not wait for it to come back."""
    return replace(memory, awaiting={p: v for p, v in memory.awaiting.items() if p != program})


def _first_seen(scan: _Scan) -> dict[str, tuple[int, float]]:
    """When this watchdog first saw each program's current pid. A program never heard from is judged from
    there: supervisord's start time is wall clock, and a clock step would age a program that just started."""
    if scan.table is None:
        return dict(scan.memory.first_seen)
    out = {}
    for info in scan.table.programs:
        if info.pid > 0:
            known = scan.memory.first_seen.get(info.name)
            out[info.name] = known if known and known[0] == info.pid else (info.pid, scan.now)
    return out


def _start_budget(rules: Rules, name: str) -> float:
    return dict(rules.program_budgets).get(name, rules.heartbeat_budget)


def _comebacks(scan: _Scan) -> dict[str, tuple[int, float]]:
    """A program the watchdog restarted must be RUNNING again within its start budget (its heartbeat budget);
    if not, one CRITICAL alert. Returns the programs still awaited. (Still RUNNING as the old pid means nothing
    was ended: the heartbeat and socket rules judge that process, not this one.)"""
    still: dict[str, tuple[int, float]] = {}
    for name, (old_pid, since) in scan.memory.awaiting.items():
        info = scan.table.by_name(name) if scan.table else None
        if info is not None and info.state == "RUNNING":
            continue
        still[name] = (old_pid, since)
        budget = _start_budget(scan.rules, name)
        if scan.now - since <= budget:
            continue
        if scan.table is None:
            state = "supervisord is not answering"
        elif info is None:
            state = "supervisord does not know it"
        else:
            state = f"supervisord says {info.state}"
        scan.reports[f"not-back:{name}"] = (
            repr(since),
            Decision(
                "REPORT",
                "not-back",
                "CRITICAL",
                f"{name} is not running again {scan.now - since:.0f}s after the watchdog restarted it "
                f"(budget {budget:g}s): {state}",
                program=info.namespec if info else name,
                pid=old_pid,
                remedy=f"read var/log/{name}.log and var/log/{name}.supervisor.log, fix the cause, then "
                f"`supervisorctl start {name}`",
                evidence={"program": name, "old_pid": old_pid, "budget_s": budget, "state": state},
            ),
        )
    return still


def _refusal(scan: _Scan, pid: int, owner: Owner) -> tuple[str, str] | None:
    """Why the process `pid` must not be restarted (rule, reason), or None when it may be."""
    snap, table = scan.snap, scan.table
    program = table.by_pid(pid) if table else None
    if owner.looks_like_gateway:
        return "never-gateway", f"{owner.describe()} is Java/Gateway-like: never touched"
    if pid in snap.listen_pids:
        return "never-listen-owner", f"{owner.describe()} owns the LISTEN socket of port {snap.gateway_port}"
    if pid == snap.our_pid or (table is not None and pid == table.supervisord_pid):
        return "never-self", f"{owner.describe()} is the watchdog or supervisord"
    if program is None:
        why = "supervisord is not answering" if table is None else "not one of our supervisord programs"
        return "not-ours", f"{owner.describe()}: {why}"
    if program.name in PROTECTED_PROGRAMS:
        return "protected-program", f"{program.name} is never restarted by the watchdog"
    if not owner.is_python or owner.uid != snap.our_uid:
        return "not-ours", f"{owner.describe()} is not a Python process of our user"
    return None


def _client_close_waits(scan: _Scan) -> dict[str, int]:
    """Restart candidates from client-side CLOSE_WAITs seen on `debounce_scans` consecutive scans."""
    seen: dict[str, int] = {}
    unknown: list[CloseWait] = []
    for cw in scan.snap.by_side("client"):
        owner = scan.snap.owner(cw.pid)
        if owner is None:
            unknown.append(cw)
            continue
        count = seen[cw.key] = scan.memory.seen.get(cw.key, 0) + 1
        evidence = {"socket": cw.describe(), "pid": cw.pid, "process": owner.name, "scans_seen": count}
        refusal = _refusal(scan, owner.pid, owner)
        if refusal is not None:
            rule, reason = refusal
            scan.reports[f"client:{cw.key}"] = (
                "1",
                _left_alone(f"client-side CLOSE_WAIT {cw.describe()}", rule, reason, evidence),
            )
            continue
        program = scan.table.by_pid(owner.pid) if scan.table else None
        if program is None:
            continue
        if count < scan.rules.debounce_scans:
            scan.pending.add(program.name)
            continue
        scan.candidates.setdefault(
            program.name,
            Decision(
                "RESTART",
                "client-close-wait",
                "WARNING",
                f"{program.name} holds a dead Gateway session ({cw.describe()} in CLOSE_WAIT for {count} scans)",
                program=program.namespec,
                pid=owner.pid,
                evidence={**evidence, "program": program.name, "create_time": owner.create_time},
            ),
        )
    _unknown_owners(scan, unknown)
    return seen


_NOT_OURS_REMEDY = (
    "if that process is yours and no longer needed, stop it yourself; the watchdog only restarts its own "
    "supervisord programs and never the Gateway"
)


def _left_alone(
    what: str, rule: str, reason: str, evidence: dict[str, Any], remedy: str = _NOT_OURS_REMEDY
) -> Decision:
    return Decision(
        "REPORT",
        rule,
        "WARNING",
        f"{what} left alone: {reason}",
        pid=evidence.get("pid"),
        remedy=remedy,
        evidence={**evidence, "rule": rule},
    )


def _unknown_owners(scan: _Scan, unknown: list[CloseWait]) -> None:
    if not unknown:
        return
    sockets = sorted(cw.describe() for cw in unknown)
    scan.reports["unknown-owner"] = (
        "|".join(sockets),
        Decision(
            "UNKNOWN",
            "owner-unreadable",
            "WARNING",
            f"{len(unknown)} client-side CLOSE_WAIT socket(s) on port {scan.snap.gateway_port} with an owner "
            "the watchdog cannot read: nothing done",
            remedy="run the watchdog as the same user as the stack's programs; find the owner with "
            f"`sudo ss -tanp state close-wait '( dport = :{scan.snap.gateway_port} )'`",
            evidence={"sockets": sockets},
        ),
    )


def _table_unreadable(scan: _Scan) -> dict[str, int]:
    scan.reports["table"] = (
        "unreadable",
        Decision(
            "UNKNOWN",
            "table-unreadable",
            "WARNING",
            "the socket table cannot be read: the watchdog cannot tell whose sockets are stuck, so it does nothing",
            remedy="run the watchdog as the user that runs the stack's programs (root on macOS)",
        ),
    )
    return {}


def _gateway_close_waits(scan: _Scan) -> None:
    """Gateway-side CLOSE_WAITs are counted and reported once per change, never acted on."""
    sockets = scan.snap.by_side("gateway")
    count = len(sockets)
    owners = sorted({o.describe() for cw in sockets if (o := scan.snap.owner(cw.pid)) is not None})
    if count == 0:
        if scan.memory.reports.get("gateway-side", "0") != "0":
            scan.reports["gateway-side"] = (
                "0",
                Decision("REPORT", "gateway-close-wait", "INFO", "Gateway-side CLOSE_WAIT sockets are gone"),
            )
        return
    scan.reports["gateway-side"] = (
        str(count),
        Decision(
            "REPORT",
            "gateway-close-wait",
            "WARNING",
            f"the Gateway holds {count} CLOSE_WAIT socket(s) on port {scan.snap.gateway_port} "
            "(dead API sessions it has not closed; they can block new handshakes)",
            remedy=GATEWAY_REMEDY,
            evidence={
                "count": count,
                "owners": owners,
                "sockets": sorted(cw.describe() for cw in sockets)[:10],
            },
        ),
    )


def _supervisord_reachable(scan: _Scan) -> None:
    if scan.table is None:
        scan.reports["supervisord"] = (
            "down",
            Decision(
                "UNKNOWN",
                "supervisord-unreachable",
                "CRITICAL",
                "supervisord does not answer: the watchdog cannot restart anything",
                remedy="check supervisord (`supervisorctl status`, var/log/supervisord.log); start the stack with "
                "`make run`",
            ),
        )


def _heartbeat_budget(rules: Rules, name: str, state: str | None) -> float:
    budget = dict(rules.program_budgets).get(name, rules.heartbeat_budget)
    program = BY_NAME.get(name)
    if program is not None and program.slow_to_connect and (state is None or state in CONNECTING_STATES):
        return max(rules.bridge_connect_budget, budget)
    return budget


def _heartbeats(scan: _Scan, heartbeats: Mapping[str, HeartbeatSeen], listening_since: float) -> None:
    """A RUNNING program silent for longer than its budget is hung."""
    if scan.table is None:
        return
    for info in scan.table.programs:
        if info.state != "RUNNING" or info.pid <= 0 or info.name not in scan.rules.heartbeat_programs:
            continue
        if info.name in PROTECTED_PROGRAMS:
            continue
        hb = heartbeats.get(info.name)
        if hb is not None and hb.pid != info.pid:
            hb = None  # a beat from the previous instance says nothing about this one
        # never heard: count from when this watchdog first saw this pid (never from supervisord's wall clock)
        first_seen = scan.first_seen.get(info.name, (info.pid, scan.now))[1]
        last = hb.received_at if hb else max(first_seen, listening_since)
        budget = _heartbeat_budget(scan.rules, info.name, hb.state if hb else None)
        silent = scan.now - last
        if silent > budget:
            _hung(scan, info, silent, budget, hb.state if hb else "never heard")


def _hung(scan: _Scan, info: ProgramInfo, silent: float, budget: float, last_state: str) -> None:
    snap = scan.snap
    owner = snap.owner(info.pid)
    evidence = {"program": info.name, "pid": info.pid, "silent_s": round(silent, 1), "budget_s": budget}
    if owner is None:
        scan.reports[f"hung-unreadable:{info.name}"] = (
            str(info.pid),
            Decision(
                "UNKNOWN",
                "owner-unreadable",
                "WARNING",
                f"{info.name} (pid {info.pid}) stopped heartbeating but its process cannot be read: nothing done",
                remedy=f"supervisorctl restart {info.namespec}",
                evidence=evidence,
            ),
        )
        return
    refusal = _refusal(scan, info.pid, owner)
    if refusal is not None:
        rule, reason = refusal
        scan.reports[f"hung:{info.name}"] = (
            str(info.pid),
            _left_alone(f"hung {info.name}", rule, reason, evidence),
        )
        return
    scan.candidates.setdefault(
        info.name,
        Decision(
            "RESTART",
            "heartbeat",
            "WARNING",
            f"{info.name} sent no heartbeat for {silent:.1f}s (budget {budget:g}s, last state {last_state}) while "
            "supervisord says RUNNING: hung",
            program=info.namespec,
            pid=info.pid,
            evidence={**evidence, "process": owner.name, "create_time": owner.create_time},
        ),
    )


def _rate_limited(scan: _Scan) -> tuple[list[Decision], Memory]:
    """At most max_restarts per program per window; past it, one alert and hands off until the window clears."""
    rules, memory, now = scan.rules, scan.memory, scan.now
    history = {p: tuple(t for t in ts if now - t < rules.restart_window) for p, ts in memory.restarts.items()}
    handed_off = {p for p in memory.handed_off if len(history.get(p, ())) >= rules.max_restarts}
    out: list[Decision] = []
    for program, decision in scan.candidates.items():
        recent = history.get(program, ())
        if len(recent) < rules.max_restarts:
            history[program] = (*recent, now)
            out.append(
                replace(decision, evidence={**decision.evidence, "restarts_in_window": len(recent) + 1})
            )
            continue
        if program not in handed_off:
            handed_off.add(program)
            out.append(
                Decision(
                    "REPORT",
                    "rate-limit",
                    "CRITICAL",
                    f"{program} needed {len(recent)} restarts in {rules.restart_window:g}s and still "
                    f"needs one ({decision.rule}): the watchdog leaves it alone now",
                    program=decision.program,
                    pid=decision.pid,
                    remedy=f"look at var/log/{program}.log, fix the cause, then `supervisorctl restart {program}`",
                    evidence={**decision.evidence, "rule": decision.rule, "restarts_in_window": len(recent)},
                )
            )
    kept = {p: ts for p, ts in history.items() if ts}
    return out, replace(memory, restarts=kept, handed_off=frozenset(handed_off))
