"""The executor's adapters use the core's commands and its read-only view only: none of them reaches into the
core's private parts (its ledger, book, desk, controls, stops, reports) or assigns to anything the core owns."""

from __future__ import annotations

import ast
from pathlib import Path

from procs.executor.engine import Executor

EXECUTOR = Path(__file__).resolve().parents[3] / "procs" / "executor"
ADAPTERS = ("app.py", "loops.py", "sender.py", "commands.py", "reconcile.py", "accept.py", "local.py")
CORE_NAMES = {"ex", "core", "executor"}  # what the adapters call the core


def _core_expr(node: ast.expr) -> bool:
    """`ex`, `self.ex`, `self.ex.view`, `ex.view`: an expression that is the core or its view."""
    if isinstance(node, ast.Name):
        return node.id in CORE_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in CORE_NAMES | {"view"} and (
            _core_expr(node.value) or isinstance(node.value, ast.Name)
        )
    return False


def _offences(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _core_expr(node.value):
            if node.attr.startswith("_") or node.attr == "ledger":
                found.append(f"line {node.lineno}: .{node.attr}")
            if isinstance(node.ctx, ast.Store):
                found.append(f"line {node.lineno}: assigns .{node.attr}")
        if isinstance(node, ast.Subscript | ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del):
            inner = node.value
            if isinstance(inner, ast.Attribute) and _core_expr(inner.value):
                found.append(f"line {node.lineno}: writes into .{inner.attr}")
    return found


def test_no_adapter_reaches_into_the_core_or_writes_its_state() -> None:
    offences = {
        name: bad for name in ADAPTERS if (bad := _offences((EXECUTOR / name).read_text(encoding="utf-8")))
    }
    assert offences == {}


def test_the_surface_check_catches_a_ledger_read_and_a_state_write() -> None:
    assert _offences("def f(ex):\n    return ex._ledger.positions\n") == ["line 2: ._ledger"]
    assert _offences("def f(self):\n    self.ex.view.quotes['AAPL'] = 1\n") == ["line 2: writes into .quotes"]
    assert _offences("def f(self):\n    return self.ex.view.positions\n") == []


def test_the_core_is_composed_not_inherited() -> None:
    assert Executor.__bases__ == (object,)
