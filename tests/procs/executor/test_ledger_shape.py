"""The ledger's shape (issue 18): one front door composed of small parts, every name the rest of the house imports
or calls still there, and no part reaching back to the front door (no import circle)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from procs.executor import ledger as front_door
from procs.executor.ledger import Ledger

ROOT = Path(__file__).resolve().parents[3]
EXECUTOR = ROOT / "procs" / "executor"
PARTS = ("ledger_store", "ledger_queries", "ledger_fills", "ledger_days", "ledger_operator")
# what programs and tests import from procs.executor.ledger
IMPORTED = {"SCHEMA_VERSION", "DayRecord", "FillIn", "HaltState", "Ledger", "LedgerError", "PositionRecord",
            "book_fill", "open_ledger"}  # fmt: skip


def _ledger_reads(source: str) -> set[str]:
    """Every `<x>._ledger.<name>` the source uses: what the executor's core calls on its ledger."""
    return {
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_ledger"
    }


def test_every_name_imported_from_the_ledger_is_still_there() -> None:
    assert set(front_door.__all__) == IMPORTED
    assert all(hasattr(front_door, name) for name in IMPORTED)


def test_every_ledger_method_the_executor_calls_exists() -> None:
    called = set().union(*(_ledger_reads(p.read_text(encoding="utf-8")) for p in EXECUTOR.glob("*.py")))
    assert {
        "apply_fill",
        "insert_order",
        "positions",
        "working",
        "group",
        "set_halt",
    } <= called  # the scan sees them
    assert sorted(name for name in called if not hasattr(Ledger, name)) == []


def test_the_ledger_is_composed_not_inherited() -> None:
    assert Ledger.__bases__ == (object,)


def test_the_front_door_runs_no_sql() -> None:
    assert ".execute(" not in (EXECUTOR / "ledger.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("part", ("ledger", *PARTS))
def test_each_ledger_module_is_small_and_says_what_it_is_for(part: str) -> None:
    path = EXECUTOR / f"{part}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert len(path.read_text(encoding="utf-8").splitlines()) < 350
    assert ast.get_docstring(tree)
    assert importlib.import_module(f"procs.executor.{part}").__doc__


@pytest.mark.parametrize("part", PARTS)
def test_no_part_imports_the_front_door(part: str) -> None:
    tree = ast.parse((EXECUTOR / f"{part}.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {f"procs.executor.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                 if n.module == "procs.executor" for a in n.names}  # fmt: skip
    assert "procs.executor.ledger" not in imported
