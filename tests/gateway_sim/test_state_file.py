"""The kept account (state_file.py) in-process: what is written reads back exactly, a correction after a restart
rebuilds the books from the kept account (not from empty), and a file of another account is refused."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from procs.gateway_sim import state_file
from procs.gateway_sim.broker import SimBroker
from procs.gateway_sim.holdings import cash_contract
from tests.gateway_sim.test_broker import ACCOUNT, fills, order

D = Decimal


def test_a_correction_after_a_restart_rebuilds_from_the_kept_account(tmp_path: Path) -> None:
    path = tmp_path / "account.json"
    first = SimBroker(ACCOUNT, session_id=1)
    first.place(order(1, "BUY", "100"), 50.00, 1)
    first.set_holding(cash_contract("EUR"), D(2500), D("1.08"))
    state_file.write_atomically(path, state_file.snapshot(first, 2))

    kept = state_file.load(path, ACCOUNT)
    assert kept is not None
    second = SimBroker(ACCOUNT, session_id=1)  # same session id: the exec ids must still not repeat
    assert state_file.restore(second, kept) == 2
    assert second.books.cash == first.books.cash and second.position("AAPL") == D(100)
    assert [h.quantity for h in second.holdings.all()] == [D(2500)]
    (buy,) = fills(second.place(order(2, "BUY", "50"), 52.00, 2))
    assert buy.exec_id not in {e.exec_id for e in first.executions()}
    second.correct_execution(buy.exec_id, price=D("51.00"))
    assert second.position("AAPL") == D(150)  # the kept 100 shares stay after the rebook
    assert second.books.holdings["AAPL"].basis == first.books.holdings["AAPL"].basis + D(50) * D("51.00") + D(
        1
    )


def test_another_accounts_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "account.json"
    state_file.write_atomically(path, state_file.snapshot(SimBroker("DU7654321"), 1))
    with pytest.raises(state_file.StateFileError, match="holds account DU7654321"):
        state_file.load(path, ACCOUNT)
    assert state_file.load(tmp_path / "none.json", ACCOUNT) is None  # the first run starts afresh


def test_supervisord_gives_the_simulator_a_state_file_under_var_dir(stack_env: Path) -> None:
    from supervisor.options import ServerOptions

    from shared.config import load_settings
    from shared.service import prepare_var
    from shared.supervisor import write_supervisord_config

    settings = load_settings()
    prepare_var(settings)
    options = ServerOptions()
    options.realize(["-c", str(write_supervisord_config(settings))])
    [sim] = [g.process_configs[0] for g in options.process_group_configs if g.name == "gateway_sim"]
    assert sim.environment["SIM_STATE_FILE"] == str(settings.data_dir / "gateway_sim_account.json")


def test_sim_state_file_is_the_default_of_the_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from procs.gateway_sim.app import parse_args

    monkeypatch.setenv("SIM_STATE_FILE", str(tmp_path / "kept.json"))
    assert parse_args([], None).state_file == tmp_path / "kept.json"
    assert parse_args(["--state-file", "other.json"], None).state_file == Path("other.json")
    monkeypatch.delenv("SIM_STATE_FILE")
    assert parse_args([], None).state_file is None  # tests and a bare run: the account starts afresh
