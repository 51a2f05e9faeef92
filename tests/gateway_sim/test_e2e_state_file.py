"""The simulator keeps its account across its own restarts with `--state-file` (as IB keeps an account across a
Gateway restart), and refuses a corrupt state file rather than starting the account empty."""

from __future__ import annotations

import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from ib_async import Contract, MarketOrder, Stock

from tests.gateway_sim.sim_harness import connect, wait_until
from tests.support.sim import REPO, VENV_PYTHON, free_port, running_sim

pytestmark = pytest.mark.timeout(90)


async def account_seen(port: int, client_id: int) -> tuple[dict[str, tuple[Decimal, float]], str]:
    """{symbol: (position, avgCost)} of the stocks held, and TotalCashValue, as an ib_async client sees them."""
    client = await connect(port, client_id)
    try:
        positions = await client.ib.reqPositionsAsync()
        summary = await client.ib.accountSummaryAsync()
        cash = next(v.value for v in summary if v.tag == "TotalCashValue")
        held = {p.contract.symbol: (Decimal(str(p.position)), p.avgCost) for p in positions if p.position}
        return held, cash
    finally:
        client.ib.disconnect()


async def test_positions_cash_and_ids_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "data" / "sim_account.json"
    args = ["--state-file", str(state)]
    with running_sim(extra_args=args) as sim:
        client = await connect(sim.port, 11)
        try:
            ib = client.ib
            [contract] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
            assert isinstance(contract, Contract)
            trade = ib.placeOrder(contract, MarketOrder("BUY", 120, orderRef="keep-1"))
            await wait_until(lambda: trade.orderStatus.status == "Filled", 20, "the MKT order to fill")
            first_order_id = trade.order.orderId
            old_exec_ids = {f.execution.execId for f in trade.fills}
        finally:
            ib.disconnect()
        manual = sim.ctl("manual-order", "MSFT", "SELL", "40")
        assert manual["status"] == "Filled"
        before, cash_before = await account_seen(sim.port, 12)
        assert set(before) == {"AAPL", "MSFT"} and before["MSFT"][0] == -40
        await wait_until(lambda: state.exists(), 20, "the state file to be written")
    # running_sim stopped it by its pid with SIGTERM; the same file on the next start
    with running_sim(extra_args=args) as sim:
        after, cash_after = await account_seen(sim.port, 13)
        assert after == before
        assert cash_after == cash_before
        client = await connect(sim.port, 14)
        try:
            ib = client.ib
            [contract] = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
            assert isinstance(contract, Contract)
            trade = ib.placeOrder(contract, MarketOrder("SELL", 20, orderRef="keep-2"))
            assert trade.order.orderId > first_order_id  # nextValidId went on from the kept counter
            await wait_until(lambda: trade.orderStatus.status == "Filled", 20, "the second order to fill")
            assert not {f.execution.execId for f in trade.fills} & old_exec_ids
        finally:
            ib.disconnect()
        again = sim.ctl("manual-order", "MSFT", "BUY", "10")
        assert again["order_id"] < manual["order_id"] and again["perm_id"] > manual["perm_id"]
        now, _ = await account_seen(sim.port, 15)
        assert now["AAPL"][0] == 100 and now["MSFT"][0] == -30


def test_a_corrupt_state_file_is_refused_with_exit_78(tmp_path: Path) -> None:
    state = tmp_path / "sim_account.json"
    state.write_text('{"format": 1, "account": "DU1234567", "cash": "lots"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IB_", "SIM_", "GATEWAY", "TRADING_"))}
    env.update(STACK_HOME=str(tmp_path), VAR_DIR=str(tmp_path / "var"), PYTHONPATH=str(REPO))
    cmd = [
        str(VENV_PYTHON),
        "-m",
        "procs.gateway_sim",
        "--port",
        str(free_port()),
        "--state-file",
        str(state),
    ]
    cmd += ["--control-dir", str(tmp_path / "run"), "--log-dir", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 78
    lines = [line for line in done.stderr.splitlines() if "state file" in line]
    assert len(lines) == 1 and "corrupt" in lines[0], done.stderr
    assert state.read_text().endswith('"lots"')  # left as it was, for the operator
