"""An unmodified NautilusTrader TradingNode (its IB data and execution clients, in their own venv) trades against
the simulator over real TCP (issue 20): AAPL loaded by id and by contract, quotes and trades by tick-by-tick data,
5-second bars, a market order filled, the position and the account booked, and nothing it received failed to
decode (no warning or error in its log but the ones a real Gateway session also gives)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.nautilus.venv import INSTALL_TIMEOUT, NODE_SCRIPT
from tests.support.sim import DEFAULT_ACCOUNT, running_sim

pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 150)  # the first run installs NautilusTrader

# What NautilusTrader logs at WARN against a real Gateway too: the farm notices (2104/2106/2158), its own start-up
# remarks, the shutdown signal and the position the test leaves open. Anything else (a decode failure, an unknown
# message, a missing instrument) fails the test.
EXPECTED_WARNINGS = re.compile(
    r"connection is OK|Started when loop is not running|No loading configured|Received SIGINT|Residual Position"
)


def test_an_unmodified_nautilus_node_trades_against_the_simulator(
    nautilus_python: Path, short_tmp: Path
) -> None:
    with running_sim(speed=1.0, extra_args=["--clock", "wall"]) as sim:
        done = subprocess.run(
            [str(nautilus_python), str(NODE_SCRIPT), "check", str(sim.port), DEFAULT_ACCOUNT, "AAPL"],
            cwd=short_tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )
        status = sim.status()
    log = done.stdout + done.stderr
    results = [line for line in log.splitlines() if line.startswith("RESULT ")]
    assert results, f"the node printed no result (exit {done.returncode}):\n{log[-3000:]}"
    result = json.loads(results[-1][len("RESULT ") :])
    assert done.returncode == 0, f"no position or account within 60 s: {result}\n{log[-3000:]}"
    # by id (the data client's provider: localSymbol AAPL on NASDAQ) and by contract (the execution client's)
    assert log.count("Adding instrument=Equity(id=AAPL.NASDAQ") >= 2
    assert "'secIdList': {'ISIN': 'US0378331005'}" in log
    assert result["quotes"] > 0 and result["trades"] > 0 and result["bars"] >= 1  # tick-by-tick and 5 s bars
    assert result["fills"] >= 1 and result["position"] == "AAPL.NASDAQ 10" and result["account"] is True
    problems = [
        line
        for line in log.splitlines()
        if ("[WARN]" in line and not EXPECTED_WARNINGS.search(line))
        or "[ERROR]" in line
        or "Traceback" in line
    ]
    assert not problems, "\n".join(problems[:20])
    assert status["bad_input"] == 0  # nothing the node sent was refused as malformed
