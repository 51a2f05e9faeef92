"""A program the watchdog ends comes back: its fallback (supervisord's XML-RPC failing) ends a real program under
a real supervisord so that supervisord starts it again, and a program that does not come back is alerted.

The watchdog runs in-process (its scan and act, one at a time) against the real supervisord's table, with only
the restart calls failing the way an unreachable supervisord fails.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procs.watchdog.act import Supervisor
from procs.watchdog.core import Watchdog
from procs.watchdog.model import Decision, Rules
from tests.procs.watchdog.watchkit import CLIENT, Supervised, supervised
from tests.support.sim import free_port
from tests.support.stack import wait_for

BUDGET = 2.0
# a program that, unlike ours, takes SIGHUP as "stop" and exits 0: supervisord counts that as expected
EXITS_0_ON_HANGUP = (
    f"{sys.executable} -c 'import signal, sys, time; "
    "signal.signal(signal.SIGHUP, lambda *_: sys.exit(0)); time.sleep(600)'"
)


class RestartCallsFail(Supervisor):
    """supervisord's table is read for real; every call a restart makes fails as if its socket were gone."""

    def __init__(self, socket_path: Path) -> None:
        super().__init__(socket_path)
        self.real = Supervisor(socket_path)

    def table(self) -> Any:
        return self.real.table()

    def rpc(self) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.fixture
def sup() -> Iterator[Supervised]:
    programs = {
        "features": f"{CLIENT} features --freeze-after 0.3",  # a hung program of ours: frozen, silent
        "strategy": EXITS_0_ON_HANGUP,
    }
    with supervised(programs, {}) as s:
        yield s


def _watchdog(sup: Supervised) -> Watchdog:
    rules = Rules(free_port(), heartbeat_budget=BUDGET, bridge_connect_budget=BUDGET, max_restarts=5)
    return Watchdog(rules, RestartCallsFail(sup.run_dir / "supervisor.sock"))


def _scan_and_act(wd: Watchdog, log: list[tuple[Decision, str]]) -> list[tuple[Decision, str]]:
    done = [(d, wd.act(d)) for d in wd.scan(dict(wd.heartbeats))]
    log.extend(done)
    return done


def test_the_fallback_ends_a_hung_program_of_ours_and_supervisord_starts_it_again(sup: Supervised) -> None:
    old = sup.pid("features")
    wd = _watchdog(sup)
    log: list[tuple[Decision, str]] = []

    def restarted() -> bool:
        _scan_and_act(wd, log)
        return any(d.evidence.get("program") == "features" and d.action == "RESTART" for d, _ in log)

    wait_for("the watchdog to restart features", restarted, 20, interval=0.5)
    [(decision, outcome)] = [(d, o) for d, o in log if d.evidence.get("program") == "features"]
    assert decision.rule == "heartbeat" and decision.pid == old
    assert outcome.startswith("supervisord failed") and "ended by SIGHUP" in outcome
    new = int(
        wait_for(
            "features RUNNING as a new process",
            lambda: sup.pid("features") != old and sup.pid("features"),
            20,
        )
    )
    assert new != old
    supervisord_log = (sup.home / "var" / "log" / "supervisord.log").read_text()
    assert "exited: features (exit status 75; not expected)" in supervisord_log
    for _ in range(3):  # it is back: no not-back alert for it
        _scan_and_act(wd, log)
    assert [d for d, _ in log if d.rule == "not-back" and d.evidence.get("program") == "features"] == []


def test_a_program_that_does_not_come_back_after_the_fallback_is_alerted(sup: Supervised) -> None:
    old = sup.pid("strategy")
    wd = _watchdog(sup)
    log: list[tuple[Decision, str]] = []

    def alerted() -> list[Decision]:
        _scan_and_act(wd, log)
        return [d for d, _ in log if d.rule == "not-back" and d.evidence.get("program") == "strategy"]

    [alert] = wait_for("the not-back alert", alerted, 30, interval=0.5)
    restarts = [(d, o) for d, o in log if d.action == "RESTART" and d.evidence.get("program") == "strategy"]
    assert restarts and restarts[0][0].pid == old
    assert alert.severity == "CRITICAL" and "EXITED" in alert.message
    assert "supervisorctl start strategy" in alert.remedy
    assert sup.info("strategy")["statename"] == "EXITED"
    for _ in range(3):
        _scan_and_act(wd, log)
    assert len([d for d, _ in log if d.rule == "not-back"]) == 1, "said once"
