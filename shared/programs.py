"""The program registry: every supervised program once, with its start order, bus sockets and heartbeat budget.

supervisord.conf is tested against it (tests/shared/test_programs.py); bin/stack, shared/config.py, the watchdog
and tests/support/stack.py read it. Adding a program is one line here plus its [program:x] section.

It must never import anything of the stack's: it is plain data, read by everyone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Program:
    name: str  # supervisord's program name, also `python -m procs.<name>`
    priority: int  # supervisord's start order (lower first) and stop order (reversed)
    pub_socket: str = ""  # its stream's socket under var/run/ ("": publishes nothing)
    req_socket: str = ""  # its request socket under var/run/ ("": serves no requests)
    heartbeats: bool = True  # publishes heartbeat.<name> every HEARTBEAT_SECONDS
    protected: bool = False  # the watchdog never restarts it (the simulator; the watchdog itself)
    # its heartbeat budget is HEARTBEAT_BUDGET_SECONDS (HEARTBEAT_BUDGETS per program); one that is slow to connect
    # gets at least BRIDGE_CONNECT_BUDGET_SECONDS while it connects (never heard, CONNECTING, SYNCING)
    slow_to_connect: bool = False

    @property
    def module(self) -> str:
        return f"procs.{self.name}"


PROGRAMS: tuple[Program, ...] = (
    Program("gateway_sim", 5, heartbeats=False, protected=True),
    Program("bridge", 10, "bridge.pub", "bridge.req", slow_to_connect=True),
    Program("features", 20, "features.pub"),
    Program("strategy", 30, "strategy.pub"),
    Program("executor", 40, "executor.pub", "executor.req"),
    Program("watchdog", 50, "watchdog.pub", protected=True),
    Program("monitor", 60, "monitor.pub", "monitor.req"),  # its heartbeat only on its stream
)

BY_NAME: dict[str, Program] = {p.name: p for p in PROGRAMS}
PROGRAM_NAMES: tuple[str, ...] = tuple(p.name for p in sorted(PROGRAMS, key=lambda p: p.priority))

# every program's stream endpoint is listed so the watchdog can hear every heartbeat
PUB_SOCKETS: dict[str, str] = {p.name: p.pub_socket for p in PROGRAMS if p.pub_socket}
REQ_SOCKETS: dict[str, str] = {p.name: p.req_socket for p in PROGRAMS if p.req_socket}

# the watchdog never restarts these
PROTECTED_PROGRAMS: frozenset[str] = frozenset(p.name for p in PROGRAMS if p.protected)
# the programs whose silence the watchdog acts on
WATCHED_HEARTBEATS: frozenset[str] = frozenset(p.name for p in PROGRAMS if p.heartbeats and not p.protected)
# the programs that publish no heartbeat at all (the monitor's dead-man check skips them)
SILENT_PROGRAMS: frozenset[str] = frozenset(p.name for p in PROGRAMS if not p.heartbeats)
