"""The watchdog measures every age on its monotonic clock: a wall-clock step of a minute either way restarts
nothing and hides nothing. Driven through the Watchdog's clock seams (monotonic and wall), one scan a second."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from procs.watchdog.act import Supervisor
from procs.watchdog.core import Watchdog
from procs.watchdog.model import Decision, Owner, ProgramInfo, ProgramTable, Rules, Snapshot
from shared.bus import Received
from shared.messages import Heartbeat

PORT = 14002
BUDGET = 4.0
PIDS = {"bridge": 101, "features": 102, "strategy": 103, "executor": 104}


@dataclass
class Clocks:
    """A monotonic clock that only moves forward, and a wall clock that can also be stepped."""

    mono: float = 1000.0
    step: float = 0.0
    wall_at_zero: float = 1_700_000_000.0

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self.wall_at_zero + self.mono + self.step


@dataclass
class World:
    """supervisord's table (start times on the stepped wall clock, like the real one) and the socket table."""

    clocks: Clocks
    started: dict[str, float] = field(
        default_factory=dict
    )  # program -> wall-clock start, as supervisord says

    def start(self, program: str) -> None:
        self.started[program] = self.clocks.wall()

    def table(self) -> ProgramTable:
        rows = (ProgramInfo(n, n, "RUNNING", PIDS[n], at) for n, at in self.started.items())
        return ProgramTable(tuple(rows), supervisord_pid=1)

    def snapshot(self, port: int, pids: Iterable[int]) -> Snapshot:
        owners = {
            p: Owner(
                p, "python3", "/usr/bin/python3", os.getuid(), ("python", "-m", "procs.x"), create_time=p
            )
            for p in pids
        }
        return Snapshot(port, self.clocks.wall(), owners=owners, our_uid=os.getuid(), our_pid=os.getpid())


class TableSupervisor(Supervisor):
    def __init__(self, world: World) -> None:
        super().__init__(Path("/nonexistent/supervisor.sock"))
        self.world = world

    def table(self) -> ProgramTable | None:
        return self.world.table()


def _watchdog(clocks: Clocks, world: World) -> Watchdog:
    return Watchdog(
        Rules(PORT, heartbeat_budget=BUDGET, bridge_connect_budget=BUDGET),
        TableSupervisor(world),
        scanner=world.snapshot,
        clock=clocks.monotonic,
        wall_clock=clocks.wall,
    )


def _beat(wd: Watchdog, program: str) -> None:
    hb = Heartbeat(program=program, pid=PIDS[program], state="READY", started_ns=0)
    wd.heard(Received(topic=f"heartbeat.{program}", msg=hb))


def _run(
    wd: Watchdog, clocks: Clocks, seconds: float, beating: Iterable[str], steps: dict[float, float]
) -> list[tuple[float, Decision]]:
    """Advance the monotonic clock in 0.5 s ticks from now: beats every tick, then the wall-clock step due at
    that tick (so the last beats carry pre-step wall times), then a scan every whole second."""
    restarts = []
    start = clocks.mono
    beating = list(beating)
    for tick in range(1, int(seconds * 2) + 1):
        t = tick / 2
        clocks.mono = start + t
        for program in beating:
            _beat(wd, program)
        clocks.step += steps.get(t, 0.0)
        if tick % 2 == 0:
            restarts += [(t, d) for d in wd.scan(dict(wd.heartbeats)) if d.action == "RESTART"]
    return restarts


def test_a_wall_clock_step_of_a_minute_either_way_restarts_nothing() -> None:
    clocks = Clocks()
    world = World(clocks)
    wd = _watchdog(clocks, world)
    for program in ("bridge", "features", "strategy"):
        world.start(program)
    restarts = _run(wd, clocks, 8, ("bridge", "features", "strategy"), steps={})
    # executor starts now and takes 3 s to send its first beat (its budget is 4 s): a forward step in between
    # must not make supervisord's wall-clock start time look a minute old
    world.start("executor")
    restarts += _run(wd, clocks, 2, ("bridge", "features", "strategy"), steps={1.0: +60.0})
    restarts += _run(wd, clocks, 10, PIDS, steps={1.0: -60.0, 5.0: -60.0, 8.0: +60.0})
    assert restarts == []
    assert sorted(wd.heartbeats) == sorted(PIDS)


def test_a_program_that_really_stops_beating_is_restarted_after_its_budget_despite_a_backward_step() -> None:
    clocks = Clocks()
    world = World(clocks)
    wd = _watchdog(clocks, world)
    for program in PIDS:
        world.start(program)
    assert _run(wd, clocks, 6, PIDS, steps={}) == []
    # strategy goes silent; a second later the wall clock is stepped back a minute
    quiet = [p for p in PIDS if p != "strategy"]
    restarts = _run(wd, clocks, 10, quiet, steps={1.0: -60.0})
    assert [(d.evidence["program"], d.rule) for _, d in restarts][:1] == [("strategy", "heartbeat")]
    when, first = restarts[0]
    assert BUDGET < when <= BUDGET + 1.0, f"restarted {when}s after its last beat"
    assert first.evidence["silent_s"] <= BUDGET + 1.0
