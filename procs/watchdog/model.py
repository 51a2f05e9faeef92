"""Plain values the watchdog's pure core works on: socket snapshot, supervisord's program table, decisions.

No I/O here and nothing that reads the system: the adapters (snapshot.py, act.py) fill these in, decide.py and
health.py only read them, so tests can build any situation by hand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shared import programs

Side = Literal["client", "gateway"]
Action = Literal["RESTART", "REPORT", "UNKNOWN"]
Severity = Literal["INFO", "WARNING", "CRITICAL"]

_PYTHON_EXE = re.compile(r"^python(\d+(\.\d+)*)?$")
# names a Gateway, TWS or IBC process goes by; invariant 3 protects all of them, whatever runs them
_GATEWAY_WORDS = re.compile(r"(?i)(^|[^a-z])(java|tws|ibgateway|ibc|ibcalpha|jts)([^a-z]|$)")

# the simulator stands in for the Gateway; the watchdog never restarts itself
PROTECTED_PROGRAMS = programs.PROTECTED_PROGRAMS  # shared/programs.py: the simulator and the watchdog itself

GATEWAY_REMEDY = (
    "restart the Gateway yourself: File > Exit, start it again and log in with 2FA; or send IBC's RESTART "
    "command if IBC's command server is configured. The stack never restarts the Gateway."
)


@dataclass(frozen=True, slots=True)
class Owner:
    """The process holding a socket, as far as it could be read."""

    pid: int
    name: str
    exe: str
    uid: int | None
    cmdline: tuple[str, ...] = ()
    create_time: float = 0.0

    @property
    def is_java(self) -> bool:
        return "java" in os.path.basename(self.exe).lower() or self.name.lower().startswith("java")

    @property
    def is_python(self) -> bool:
        return bool(_PYTHON_EXE.match(os.path.basename(self.exe)) or _PYTHON_EXE.match(self.name))

    @property
    def looks_like_gateway(self) -> bool:
        """Java, or named like TWS / IB Gateway / IBC: never to be signalled, whatever else is true."""
        words = [self.name, os.path.basename(self.exe), *(os.path.basename(a) for a in self.cmdline[:3])]
        return self.is_java or any(_GATEWAY_WORDS.search(w) for w in words if w)

    def describe(self) -> str:
        return f"{self.name or '?'} (pid {self.pid})"


@dataclass(frozen=True, slots=True)
class CloseWait:
    """One CLOSE_WAIT socket on the Gateway port, as held by one process (pid None: the owner is unreadable)."""

    side: Side  # client: remote port = Gateway port (one of its clients); gateway: local port = Gateway port
    local: str
    remote: str
    pid: int | None

    @property
    def key(self) -> str:
        return f"{self.pid}|{self.local}|{self.remote}"

    def describe(self) -> str:
        return f"{self.local}->{self.remote}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the kernel's socket table said about the Gateway port at one instant."""

    gateway_port: int
    taken_at: float
    close_waits: tuple[CloseWait, ...] = ()
    listening: bool = False  # something LISTENs on the Gateway port (its owner may be unreadable)
    listen_pids: frozenset[int] = frozenset()
    owners: Mapping[int, Owner] = field(default_factory=dict)
    unreadable_pids: frozenset[int] = frozenset()
    table_readable: bool = True
    our_uid: int = 0
    our_pid: int = 0
    tcp_sockets: int = 0

    def by_side(self, side: Side) -> tuple[CloseWait, ...]:
        return tuple(cw for cw in self.close_waits if cw.side == side)

    def owner(self, pid: int | None) -> Owner | None:
        """The readable owner of `pid`, or None when it is unknown or could not be read."""
        if pid is None or pid in self.unreadable_pids:
            return None
        return self.owners.get(pid)


@dataclass(frozen=True, slots=True)
class ProgramInfo:
    """One row of supervisord's getAllProcessInfo()."""

    name: str
    group: str
    state: str  # supervisord's statename: RUNNING, STARTING, BACKOFF, STOPPED, EXITED, FATAL, ...
    pid: int
    start: float  # wall-clock seconds when supervisord started it: for display only, never for an age

    @property
    def namespec(self) -> str:
        return self.name if self.group == self.name else f"{self.group}:{self.name}"

    @classmethod
    def from_rpc(cls, info: Mapping[str, Any]) -> ProgramInfo:
        return cls(
            name=str(info["name"]),
            group=str(info.get("group", info["name"])),
            state=str(info.get("statename", "UNKNOWN")),
            pid=int(info.get("pid") or 0),
            start=float(info.get("start") or 0),
        )


@dataclass(frozen=True, slots=True)
class ProgramTable:
    """supervisord's view: our programs and supervisord's own pid. Absent (None) when supervisord is down."""

    programs: tuple[ProgramInfo, ...]
    supervisord_pid: int

    def by_pid(self, pid: int) -> ProgramInfo | None:
        return next((p for p in self.programs if p.pid == pid and pid > 0), None)

    def by_name(self, name: str) -> ProgramInfo | None:
        return next((p for p in self.programs if p.name == name), None)


@dataclass(frozen=True, slots=True)
class HeartbeatSeen:
    """The last heartbeat heard from a program, stamped with the watchdog's own monotonic clock on receipt."""

    program: str
    pid: int
    state: str
    received_at: float


@dataclass(frozen=True, slots=True)
class Rules:
    """The watchdog's settings, as the decision function needs them."""

    gateway_port: int
    heartbeat_budget: float = 20.0
    bridge_connect_budget: float = 120.0
    program_budgets: tuple[tuple[str, float], ...] = ()  # HEARTBEAT_BUDGETS: per-program overrides
    max_restarts: int = 3
    restart_window: float = 600.0
    debounce_scans: int = 2
    heartbeat_programs: frozenset[str] = programs.WATCHED_HEARTBEATS


@dataclass(frozen=True, slots=True)
class Memory:
    """What the decision function carries from one scan to the next (it never mutates it; it returns a new one)."""

    seen: Mapping[str, int] = field(default_factory=dict)  # client CLOSE_WAIT key -> consecutive scans seen
    restarts: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # program -> restart times
    handed_off: frozenset[str] = frozenset()  # programs over the rate limit: alerted once, left alone
    reports: Mapping[str, str] = field(default_factory=dict)  # report topic -> signature last reported
    pending: frozenset[str] = frozenset()  # programs seen in client CLOSE_WAIT once: confirm soon
    # every time below is the watchdog's monotonic clock: a wall-clock step neither ages nor hides anything
    first_seen: Mapping[str, tuple[int, float]] = field(default_factory=dict)  # program -> (pid, first seen)
    awaiting: Mapping[str, tuple[int, float]] = field(default_factory=dict)  # restarted -> (old pid, when)


@dataclass(frozen=True, slots=True)
class Decision:
    """One thing the watchdog decided: restart a program, report something, or say it cannot tell."""

    action: Action
    rule: str
    severity: Severity
    message: str
    program: str | None = None  # supervisord namespec, for RESTART
    pid: int | None = None
    remedy: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
