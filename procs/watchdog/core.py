"""The watchdog's core between scans: heartbeats heard, one scan, the decisions acted on and reported.

superlance's shape: a Watchdog that is handed its supervisord adapter, scanner and clocks, with `scan()` and
`act()` that a test can call one at a time; decide.py decides, this only carries the memory from scan to scan.
Every age, budget and window is measured on the monotonic clock; the wall clock only stamps what it reports.
It must never open a socket of its own, connect to the Gateway port, or signal what decide() spared.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from procs.watchdog.act import Supervisor, left_running, restart
from procs.watchdog.decide import decide, forget_restart
from procs.watchdog.model import Decision, HeartbeatSeen, Memory, ProgramTable, Rules, Snapshot
from procs.watchdog.snapshot import take_snapshot
from shared.bus import Received
from shared.config import Settings
from shared.log import event, log_every
from shared.messages import Alert, Heartbeat

Scanner = Callable[[int, Iterable[int]], Snapshot]
# a dead session seen once is confirmed this soon, not a whole scan interval later: the debounce only has to
# outlast a normal close (milliseconds), and the bridge is back sooner
CONFIRM_SECONDS = 1.0


def rules_from(settings: Settings) -> Rules:
    return Rules(
        gateway_port=settings.ib_port,
        heartbeat_budget=settings.heartbeat_budget_seconds,
        bridge_connect_budget=settings.bridge_connect_budget_seconds,
        program_budgets=settings.heartbeat_budgets,
        max_restarts=settings.watchdog_max_restarts,
        restart_window=settings.watchdog_restart_window,
    )


class Watchdog:
    """One watchdog's state between scans: heartbeats heard, the core's memory, what it did."""

    def __init__(
        self,
        rules: Rules,
        supervisor: Supervisor,
        *,
        dry_run: bool = False,
        scanner: Scanner = take_snapshot,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = rules
        self.supervisor = supervisor
        self.dry_run = dry_run
        self.scanner = scanner
        self.clock = clock  # ages, budgets, restart windows: never steps
        self.wall_clock = wall_clock  # timestamps in reports only
        self.started_at = clock()
        self.memory = Memory()
        self.heartbeats: dict[str, HeartbeatSeen] = {}
        self.malformed_heartbeats = 0  # well-formed messages that are not a heartbeat of the topic's program
        self.undecodable = 0  # frames the bus could not decode at all (counted by the Subscriber)
        self.actions: deque[dict[str, Any]] = deque(maxlen=10)  # the last restarts decided, with outcomes
        self.restarts = 0  # restarts carried out since the watchdog started
        self.alerts: Counter[str] = Counter()
        self.last: dict[str, Any] = {}

    def heard(self, got: Received) -> None:
        """Record a heartbeat; anything else on a heartbeat topic is counted as malformed and ignored."""
        msg, program = got.msg, got.topic.removeprefix("heartbeat.")
        if not isinstance(msg, Heartbeat) or msg.program != program or msg.pid <= 0:
            self.malformed_heartbeats += 1
            log_every(
                "watchdog.bad-heartbeat", 30.0, "WARNING", f"ignored a malformed heartbeat on {got.topic}"
            )
            return
        self.heartbeats[program] = HeartbeatSeen(program, msg.pid, msg.state, self.clock())

    def scan(self, heartbeats: dict[str, HeartbeatSeen]) -> list[Decision]:
        """One pass: supervisord's table, the socket table, the core's decisions (blocking; no action yet)."""
        t0 = time.perf_counter()
        table = self.supervisor.table()
        pids = [p.pid for p in table.programs if p.pid] if table else []
        snap = self.scanner(self.rules.gateway_port, pids)
        now = self.clock()
        decisions, self.memory = decide(
            snap, table, heartbeats, self.memory, self.rules, now, self.started_at
        )
        self._remember_scan(snap, table, now, time.perf_counter() - t0)
        return decisions

    def act(self, decision: Decision) -> str:
        """Carry out a RESTART (blocking); other decisions are only reported."""
        if decision.action != "RESTART":
            return ""
        outcome = restart(self.supervisor, decision, dry_run=self.dry_run)
        if left_running(outcome):
            self.memory = forget_restart(self.memory, str(decision.evidence.get("program", "")))
        return outcome

    def _remember_scan(self, snap: Snapshot, table: ProgramTable | None, now: float, took: float) -> None:
        self.last = {
            "last_scan_ns": int(self.wall_clock() * 1e9),
            "last_scan_mono_ns": int(now * 1e9),
            "scan_ms": round(took * 1000, 1),
            "tcp_sockets": snap.tcp_sockets,
            "listening": snap.listening,
            "table_readable": snap.table_readable,
            "close_wait_client": len(snap.by_side("client")),
            "close_wait_gateway": len(snap.by_side("gateway")),
            "close_wait_unknown_owner": sum(1 for cw in snap.close_waits if snap.owner(cw.pid) is None),
            "supervisord": "up" if table is not None else "down",
        }

    def recorded(self, decision: Decision, outcome: str) -> Alert:
        """Log one structured line for the decision, remember it, and return the alert to publish."""
        # `target`, not `program`: loguru's `program` field names the process that logs (the watchdog)
        fields: dict[str, Any] = {"rule": decision.rule, "target": decision.program, "pid": decision.pid}
        skip = {*fields, "program", "create_time"}
        fields.update((k, v) for k, v in decision.evidence.items() if k not in skip)
        event(
            f"watchdog.{decision.action.lower()}", **fields, outcome=outcome or "-", message=decision.message
        )
        self.alerts[decision.rule] += 1
        if decision.action == "RESTART":
            if outcome.startswith("restarted"):
                self.restarts += 1
            when = int(self.wall_clock() * 1e9)
            self.actions.append(
                {
                    "ts_ns": when,
                    "program": decision.program,
                    "pid": decision.pid,
                    "rule": decision.rule,
                    "outcome": outcome,
                }
            )
        return Alert(
            severity=decision.severity,
            code=f"watchdog.{decision.rule}",
            message=decision.message + (f": {outcome}" if outcome else ""),
            remedy=decision.remedy,
            evidence={**fields, "action": decision.action},
        )

    def detail(self) -> dict[str, Any]:
        return {
            **self.last,
            "dry_run": self.dry_run,
            "restarts": self.restarts,
            "actions": list(self.actions),
            "alerts": dict(self.alerts),
            "handed_off": sorted(self.memory.handed_off),
            "malformed_heartbeats": self.malformed_heartbeats + self.undecodable,
            "heartbeats_heard": sorted(self.heartbeats),
        }
