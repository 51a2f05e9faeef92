"""The account commands through `bin/gateway-sim-ctl` and the control socket: a bad argument answers one line of
usage with exit 2 and leaves the simulator as it was; a well-typed command the simulator cannot do is refused
(exit 1); `audit` prints exactly its documented keys."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from procs.gateway_sim.control import run_command
from procs.gateway_sim.inprocess import GatewaySim
from tests.gateway_sim.test_e2e_cli import ctl
from tests.support.sim import RunningSim

pytestmark = pytest.mark.timeout(60)

BAD_ARGUMENTS = [
    ["correct-execution"],
    ["correct-execution", "0000e0d5.00000001.01.01", "1", "2", "3"],
    ["correct-execution", "no-dots"],
    ["correct-execution", "0000e0d5.00000001.01.01", "abc"],
    ["correct-execution", "0000e0d5.00000001.01.01", "-1"],
    ["correct-execution", "0000e0d5.00000001.01.01", "-", "0"],
    ["correct-execution", "0000e0d5.00000001.01.01", "nan"],
    ["manual-order", "AAPL", "BUY"],
    ["manual-order", "NOSUCH", "BUY", "10"],
    ["manual-order", "AAPL", "HOLD", "10"],
    ["manual-order", "AAPL", "BUY", "0"],
    ["manual-order", "AAPL", "BUY", "-5"],
    ["manual-order", "AAPL", "SELL", "inf"],
    ["holding", "AAPL"],
    ["holding", "AAPL", "x", "OPT"],
    ["holding", "AAPL", "1", "FUT"],
    ["holding", "AAPL", "5"],
    ["holding", "NOSUCH", "1", "OPT"],
    ["holding", "USD", "100", "CASH"],
    ["holding", "EURO", "100", "CASH"],
    ["holding", "AAPL", "inf", "OPT"],
    ["holding", "A/B", "1"],
    ["delay"],
    ["delay", "executions"],
    ["delay", "sideways", "1"],
    ["delay", "place", "-1"],
    ["delay", "place", "nan"],
    ["delay", "place", "inf"],
    ["delay", "place", "86400"],
    ["delay", "positions", "soon"],
    ["audit", "now"],
    ["error", "10349", "\udcff"],
]


def state(sim: GatewaySim) -> tuple[Any, ...]:
    status = sim.status()
    return status["faults"], status["holdings"], status["open_orders"], sim.audit()


@pytest.mark.parametrize(
    "argv", BAD_ARGUMENTS, ids=lambda argv: " ".join(argv).encode("ascii", "replace").decode()
)
def test_a_bad_argument_answers_one_line_of_usage_and_changes_nothing(
    sim: GatewaySim, argv: list[str]
) -> None:
    before = state(sim)
    answer = sim.call(run_command(sim.server, argv))  # type: ignore[arg-type]
    assert answer["ok"] is False and answer["usage"] is True, answer
    assert len(answer["error"].splitlines()) == 1 and answer["error"]
    assert state(sim) == before


def test_a_correction_of_an_unknown_execution_is_refused_not_a_usage_error(sim: GatewaySim) -> None:
    answer = sim.call(run_command(sim.server, ["correct-execution", "0000e0d5.00000001.01.01"]))  # type: ignore[arg-type]
    assert answer == {
        "ok": False,
        "usage": False,
        "error": "correct-execution: 0000e0d5.00000001.01.01 is not an execution of this account",
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["correct-execution", "0000e0d5.00000001.01.01", "abc"],
        ["manual-order", "AAPL", "BUY", "-5"],
        ["holding", "AAPL", "1", "FUT"],
        ["delay", "sideways", "1"],
        ["audit", "now"],
        ["silent", "sideways"],
    ],
)
def test_the_cli_exits_2_with_one_line_for_a_bad_argument(shared_sim: RunningSim, argv: list[str]) -> None:
    done = ctl(shared_sim, *argv)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"gateway-sim-ctl: {argv[0]}") or line.startswith("gateway-sim-ctl: usage:")
    assert done.stdout == ""


def test_the_cli_refuses_an_unknown_execution_with_exit_1(shared_sim: RunningSim) -> None:
    done = ctl(shared_sim, "correct-execution", "0000e0d5.deadbeef.01.01")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "gateway-sim-ctl: correct-execution: 0000e0d5.deadbeef.01.01 is not an execution of this account"
    ]


@pytest.mark.parametrize("timeout", ["inf", "nan", "0", "-1"])
def test_the_cli_refuses_a_timeout_that_is_not_a_positive_number(
    shared_sim: RunningSim, timeout: str
) -> None:
    done = ctl(shared_sim, "--timeout", timeout, "status")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "--timeout" in done.stderr


def test_the_cli_prints_the_audit_with_exactly_its_keys(shared_sim: RunningSim) -> None:
    done = ctl(shared_sim, "--json", "audit")
    assert done.returncode == 0, done.stderr
    audit = json.loads(done.stdout)
    assert set(audit) == {"orders", "executions", "positions", "cash", "max_abs_position"}
    assert isinstance(audit["cash"], str) and math.isfinite(float(audit["cash"]))
    shown = ctl(shared_sim, "delay", "contract-details", "0")
    assert shown.returncode == 0 and json.loads(shown.stdout) == {"delays": {}}
