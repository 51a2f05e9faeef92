"""bin/trader: tables a person can read, a clear non-zero exit when the stack is down, arguments checked before
anything is sent, and the operator's reconcile, accept-broker and flatten --wait against a real executor."""

from __future__ import annotations

import importlib
import re
import subprocess
from decimal import Decimal
from pathlib import Path
from types import ModuleType

from procs.cli import trader_view
from tests.support.wait import wait_for

from .cluster import Cluster, broker_positions, running_cluster

REPO = Path(__file__).resolve().parents[3]
TRADER = REPO / "bin" / "trader"
D = Decimal


def load_trader() -> ModuleType:
    """bin/trader's module: procs/cli/trader.py."""
    return importlib.import_module("procs.cli.trader")


def test_against_a_stack_that_is_down_it_says_so_and_exits_non_zero(short_tmp: Path) -> None:
    env = {"STACK_HOME": str(short_tmp), "VAR_DIR": str(short_tmp / "var"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(TRADER), "status"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 3
    assert "not running" in done.stderr and "make run" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_setting_is_one_line_and_exit_78(short_tmp: Path) -> None:
    env = {"STACK_HOME": str(short_tmp), "IB_PORT": "4001", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(TRADER), "status"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 78 and "IB_PORT" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_tables_align_numbers_right_and_words_left() -> None:
    rows = [
        {"symbol": "AAPL", "quantity": "37", "mark": "269.92"},
        {"symbol": "NVDA", "quantity": "120", "mark": "83.2"},
    ]
    text = trader_view.table(rows, ("symbol", "quantity", "mark"))
    lines = text.splitlines()
    assert lines[0].split() == ["symbol", "quantity", "mark"]
    assert lines[2].startswith("AAPL ") and lines[2].endswith("269.92")
    assert lines[3].index("120") + 3 == lines[2].index("37") + 2  # right-aligned in one column
    assert trader_view.table([], ("symbol",)) == "(none)"


def test_status_shows_the_halt_and_skips_empty_fields() -> None:
    text = trader_view.show_status(
        {"state": "HALTED", "halted": True, "halt_reason": "lunch", "last_rejection": ""}
    )
    assert "HALTED" in text and "lunch" in text and "last rejection" not in text


# ------------------------------------------------------------------ reconcile, accept-broker, flatten: rendering

RECONCILE = {
    "symbols": [
        {
            "symbol": "AAPL",
            "ledger_quantity": "300",
            "broker_quantity": "200",
            "difference": "-100",
            "ledger_avg_cost": "190.1200",
            "broker_avg_cost": "190.1000",
            "ledger_cash": "-57036.00",
            "mismatch": True,
            "working_orders": 0,
        },
        {
            "symbol": "MSFT",
            "ledger_quantity": "0",
            "broker_quantity": "0",
            "difference": "0",
            "ledger_avg_cost": "0.0000",
            "mismatch": False,
            "working_orders": 1,
        },
    ],
    "other_holdings": [{"symbol": "ES", "sec_type": "FUT", "local_symbol": "ESZ5", "quantity": "2"}],
    "last_reconcile": "2025-01-02T15:04:05Z",
    "halted": True,
    "halt_reason": "position mismatch in AAPL",
}


def test_reconcile_shows_ledger_and_broker_side_by_side_then_other_holdings_then_the_halt() -> None:
    text = trader_view.show_reconcile(RECONCILE)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["symbol", "ledger", "qty", "broker"]
    aapl = next(line for line in lines if line.startswith("AAPL"))
    assert aapl.split()[:4] == ["AAPL", "300", "200", "-100"] and aapl.rstrip().endswith("MISMATCH")
    assert next(line for line in lines if line.startswith("MSFT")).rstrip().endswith("ok")
    holdings = lines.index(next(line for line in lines if line.startswith("other holdings")))
    assert lines[holdings + 1].strip() == "ES FUT (ESZ5): 2"
    assert lines[-1] == "halted: yes (position mismatch in AAPL)"
    assert lines.index(aapl) < holdings


def test_status_shows_each_flattening_symbol_and_other_holdings() -> None:
    text = trader_view.show_status(
        {
            "state": "RUNNING",
            "halted": True,
            "flattening": {
                "AAPL": {"left": "100", "working_order": "ibs-7", "state": "working"},
                "MSFT": {"left": "0", "working_order": "", "state": "flat"},
            },
            "other_holdings": [
                {"symbol": "IBM", "sec_type": "OPT", "local_symbol": "IBM 250117C", "quantity": "-1"}
            ],
        }
    )
    assert "flattening         AAPL: working, 100 left, working order ibs-7" in text
    assert "flattening         MSFT: flat, 0 left" in text
    assert "other holding      IBM OPT (IBM 250117C): -1" in text


def test_flatten_waits_only_for_the_named_symbols_and_for_every_one_when_none_is_named() -> None:
    trader = load_trader()
    flattening = {
        "AAPL": {"left": "0", "working_order": "", "state": "flat"},
        "MSFT": {"left": "50", "working_order": "ibs-9", "state": "working"},
    }
    assert trader.still_open(flattening, ["AAPL"]) == {}
    assert list(trader.still_open(flattening, [])) == ["MSFT"]
    assert list(trader.still_open(flattening, ["AAPL", "MSFT"])) == ["MSFT"]
    # no shares left but the closing order still working: not flat yet
    assert trader.still_open({"AAPL": {"left": "0", "state": "working"}}, []) != {}


def _run(short_tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"STACK_HOME": str(short_tmp), "SYMBOLS": "AAPL,MSFT", "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(TRADER), *args], env=env, capture_output=True, text=True, timeout=30)


def test_arguments_that_are_wrong_are_refused_with_exit_2_before_anything_is_sent(short_tmp: Path) -> None:
    # the stack is down here: anything sent would end in exit 3, so exit 2 proves nothing was sent
    for args in (
        ("flatten", "AAPL", "TSLA"),
        ("flatten", "--wait", "-1"),
        ("flatten", "--wait", "inf"),
        ("accept-broker", "AAPL"),
        ("accept-broker", "AAPL", "--reason", "  "),
        ("accept-broker", "AA PL", "--reason", "sold by hand"),
        ("--timeout", "0", "status"),
        ("--timeout", "nan", "status"),
    ):
        done = _run(short_tmp, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, args
    assert "TSLA" in _run(short_tmp, "flatten", "AAPL", "TSLA").stderr
    assert _run(short_tmp, "flatten", "aapl", "--wait").returncode == 3  # valid: it tries to send


# ------------------------------------------------------------------ against a real executor


def _trader(c: Cluster, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TRADER, *args], env=c.env, capture_output=True, text=True, timeout=90)


def _no_working_orders(c: Cluster) -> bool:
    return all(o["status"] not in ("NEW", "SUBMITTED", "PARTIALLY_FILLED") for o in c.orders())


def test_halt_reconcile_accept_broker_and_flatten_wait_through_bin_trader(short_tmp: Path) -> None:
    with running_cluster(short_tmp) as c:
        # any bytes in a reason: the halt is sent (it used to crash before sending)
        halted = _trader(c, "halt", b"lunch \xff")
        assert halted.returncode == 0 and "Traceback" not in halted.stderr, halted.stderr
        assert c.status()["halt_reason"] == "lunch \ufffd"
        assert _trader(c, "resume").returncode == 0

        c.target_until(
            "AAPL", 0.3, lambda: broker_positions(c).get("AAPL", 0) > 0 and _no_working_orders(c), 30
        )
        held = broker_positions(c)["AAPL"]
        c.sim.ctl("manual-order", "AAPL", "SELL", "100")  # a human sells 100 in TWS
        wait_for("the mismatch", lambda: c.status()["mismatched"].get("AAPL"), 20)

        side_by_side = _trader(c, "reconcile")
        assert side_by_side.returncode == 1, side_by_side.stdout + side_by_side.stderr
        aapl = next(line for line in side_by_side.stdout.splitlines() if line.startswith("AAPL"))
        assert [D(x) for x in aapl.split()[1:4]] == [held, held - 100, -100] and "MISMATCH" in aapl
        assert side_by_side.stdout.splitlines()[-1].startswith("halted: yes")

        assert _trader(c, "accept-broker", "AAPL").returncode == 2  # no --reason: nothing sent
        assert c.status()["mismatched"].get("AAPL")
        # a slow Gateway: the executor's read of the broker's executions takes longer than --timeout's default (3 s);
        # the command waits for it instead of saying the stack is down
        c.sim.ctl("delay", "executions", "4")
        accepted = _trader(c, "accept-broker", "aapl", "--reason", "sold by hand in TWS")
        assert accepted.returncode == 0, accepted.stderr
        c.sim.ctl("delay", "executions", "0")
        words = re.fullmatch(
            r"accepted the broker's AAPL: ledger (\S+) -> (\S+), cash adjustment .*", accepted.stdout.strip()
        )
        assert words and [D(x) for x in words.groups()] == [held, held - 100], accepted.stdout
        assert c.status()["mismatched"] == {}
        assert _trader(c, "reconcile").returncode == 0

        flat = _trader(c, "flatten", "AAPL", "--wait", "60")
        assert flat.returncode == 0, flat.stdout + flat.stderr
        assert flat.stdout.splitlines()[-1] == "flat: AAPL"
        assert broker_positions(c).get("AAPL", 0) == 0
        status = _trader(c, "status")
        assert "flattening         AAPL: flat, 0 left" in status.stdout
