"""One layout for every program (issue 18): `procs/<name>/app.py` defines `async def main(svc)`, and
`procs/<name>/__main__.py` only hands it to the shared harness: `raise SystemExit(run_service("<name>", main))`.

Read from the source with ast (nothing is imported or started), for every program of shared/programs.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.programs import PROGRAMS

REPO = Path(__file__).resolve().parents[1]
NAMES = [p.name for p in PROGRAMS]


def _tree(path: Path) -> ast.Module:
    assert path.is_file(), f"{path.relative_to(REPO)} is missing"
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("name", NAMES)
def test_app_defines_the_programs_main_coroutine(name: str) -> None:
    tree = _tree(REPO / "procs" / name / "app.py")
    mains = [n for n in tree.body if isinstance(n, ast.AsyncFunctionDef) and n.name == "main"]
    assert mains, f"procs/{name}/app.py has no top-level `async def main(svc)`"
    assert [a.arg for a in mains[0].args.args] == ["svc"], f"procs/{name}/app.py: main must take (svc)"


@pytest.mark.parametrize("name", NAMES)
def test_entry_point_runs_apps_main_on_the_harness_under_its_own_name(name: str) -> None:
    tree = _tree(REPO / "procs" / name / "__main__.py")
    imported = {
        (node.module, alias.name)
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert (f"procs.{name}.app", "main") in imported, f"procs/{name}/__main__.py must import main from app"
    assert ("shared.service", "run_service") in imported
    [last] = tree.body[-1:]
    # raise SystemExit(run_service("<name>", main, ...))
    assert isinstance(last, ast.Raise) and isinstance(last.exc, ast.Call), f"procs/{name}/__main__.py"
    assert isinstance(last.exc.func, ast.Name) and last.exc.func.id == "SystemExit"
    [call] = last.exc.args
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "run_service"
    program, entry = call.args
    assert isinstance(program, ast.Constant) and program.value == name
    assert isinstance(entry, ast.Name) and entry.id == "main"
    # nothing else runs at import: the docstring, the imports and the one raise
    others = [n for n in tree.body[:-1] if not isinstance(n, ast.ImportFrom | ast.Import | ast.Expr)]
    assert not others, f"procs/{name}/__main__.py does more than wire: {[ast.dump(n)[:60] for n in others]}"
