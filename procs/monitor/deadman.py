"""The dead-man's switch decision: ping (healthy) or /fail with a reason. Pure: facts in, a verdict out.

healthchecks.io's convention: GET the URL on every healthy cycle, GET/POST `URL/fail` while a required part is
down; when the machine or supervisord dies the pings stop, and the outside service raises the alarm. Healthy
means: supervisord answers, every program it should run is RUNNING (a short restart is forgiven for GRACE
seconds), every program with a heartbeat beat within its budget, and the bridge is READY -- or the market is
closed, a planned pause in which the Gateway's nightly restart is no one's emergency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.programs import SILENT_PROGRAMS

GRACE = 30.0  # seconds a program may be out of RUNNING (a restart) before the switch says /fail
# programs without the harness's heartbeat (the simulator stands in for the Gateway)
NO_HEARTBEAT = SILENT_PROGRAMS  # shared/programs.py: the simulator publishes no heartbeat


@dataclass(frozen=True, slots=True)
class DeadmanFacts:
    supervisord_up: bool
    # program -> supervisord state, for the programs it should run (STOPPED ones were stopped on purpose)
    programs: Mapping[str, str] = field(default_factory=dict)
    not_running_for: Mapping[str, float] = field(default_factory=dict)  # program -> seconds out of RUNNING
    heartbeat_age: Mapping[str, float | None] = field(default_factory=dict)  # None: never heard
    budgets: Mapping[str, float] = field(default_factory=dict)
    bridge_state: str = ""
    market_closed: bool = False


@dataclass(frozen=True, slots=True)
class DeadmanVerdict:
    healthy: bool
    reason: str  # empty when healthy


def decide(f: DeadmanFacts) -> DeadmanVerdict:
    if not f.supervisord_up:
        return DeadmanVerdict(False, "supervisord is not answering")
    problems = []
    for name, state in sorted(f.programs.items()):
        if state != "RUNNING":
            if f.not_running_for.get(name, 0.0) > GRACE:
                problems.append(f"{name} is {state}")
            continue
        if name in NO_HEARTBEAT:
            continue
        age = f.heartbeat_age.get(name)
        budget = f.budgets.get(name, 20.0)
        if age is None or age > budget:
            problems.append(f"{name} sent no heartbeat for {'ever' if age is None else f'{age:.0f}s'}")
    if "bridge" in f.programs and f.bridge_state != "READY" and not f.market_closed:
        problems.append(f"the bridge is {f.bridge_state or 'not heard'}")
    if problems:
        return DeadmanVerdict(False, "; ".join(problems))
    return DeadmanVerdict(True, "")


def fail_url(url: str) -> str:
    """healthchecks.io's failure endpoint of a check URL."""
    return url.rstrip("/") + "/fail"
