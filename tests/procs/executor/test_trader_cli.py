"""bin/trader: tables a person can read, and a clear non-zero exit when the stack is down."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[3]
TRADER = REPO / "bin" / "trader"


def load_trader() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("trader_cli", str(TRADER))
    spec = importlib.util.spec_from_loader("trader_cli", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


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
    trader = load_trader()
    rows = [
        {"symbol": "AAPL", "quantity": "37", "mark": "269.92"},
        {"symbol": "NVDA", "quantity": "120", "mark": "83.2"},
    ]
    text = trader.table(rows, ("symbol", "quantity", "mark"))
    lines = text.splitlines()
    assert lines[0].split() == ["symbol", "quantity", "mark"]
    assert lines[2].startswith("AAPL ") and lines[2].endswith("269.92")
    assert lines[3].index("120") + 3 == lines[2].index("37") + 2  # right-aligned in one column
    assert trader.table([], ("symbol",)) == "(none)"


def test_status_shows_the_halt_and_skips_empty_fields() -> None:
    trader = load_trader()
    text = trader.show_status(
        {"state": "HALTED", "halted": True, "halt_reason": "lunch", "last_rejection": ""}
    )
    assert "HALTED" in text and "lunch" in text and "last rejection" not in text
