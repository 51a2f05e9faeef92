"""gateway-health's protective-stop check: WARNING, with what to do, when a position has had no stop at the broker
for longer than one reconciliation (from the executor heartbeat's `unprotected` and `reconcile_seconds`)."""

from __future__ import annotations

from procs.watchdog.health import EXIT_CODES, checks, overall, render_table
from shared.messages import Heartbeat

from .test_gateway_health import NOW, facts


def executor(
    unprotected: dict[str, float] | None, age_s: float = 1.0, reconcile_seconds: float = 60
) -> Heartbeat:
    detail: dict[str, object] = {"reconcile_seconds": reconcile_seconds}
    if unprotected is not None:
        detail["unprotected"] = unprotected
    return Heartbeat(program="executor", pid=12, state="READY", started_ns=0, ts_ns=int((NOW - age_s) * 1e9),
                     detail=detail)  # fmt: skip


def stop_check(hb: Heartbeat | None) -> list[tuple[str, str, str]]:
    return [
        (c.status, c.summary, c.remedy) for c in checks(facts(executor=hb)) if c.name == "protective stops"
    ]


def test_unprotected_longer_than_one_reconciliation_warns_with_what_to_do() -> None:
    f = facts(executor=executor({"AAPL": 75.0, "MSFT": 2.0}))
    found = checks(f)
    (status, summary, remedy) = stop_check(f.executor)[0]
    assert status == "WARNING" and "AAPL" in summary and "MSFT" not in summary and "60s" in summary
    assert "bin/trader positions" in remedy and "flatten" in remedy
    assert overall(found) == "WARNING" and EXIT_CODES[overall(found)] == 1
    assert "-> `bin/trader positions`" in render_table(f, found)


def test_a_stop_being_placed_within_one_reconciliation_is_ok() -> None:
    assert stop_check(executor({"AAPL": 2.0}, reconcile_seconds=3))[0][0] == "OK"
    assert stop_check(executor({}))[0][0] == "OK"
    assert stop_check(executor({"AAPL": 3.5}, reconcile_seconds=3))[0][0] == "WARNING"


def test_no_check_without_the_executor_or_without_stops() -> None:
    assert stop_check(None) == []
    assert stop_check(executor(None)) == []


def test_an_old_executor_heartbeat_says_unknown_not_ok() -> None:
    assert stop_check(executor({}, age_s=300))[0][0] == "UNKNOWN"
