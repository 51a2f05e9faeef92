"""Commands as entry points: every [project.scripts] entry names a main() that exists, bin/ has a shim for it
that runs the same module, and a shim works from the repository root under the system python3 too."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_the_documented_commands_are_entry_points() -> None:
    assert set(SCRIPTS) == {"stack", "trader", "gateway-health", "gateway-sim-ctl", "backtest"}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_entry_point_is_a_main_and_its_bin_shim_runs_that_module(name: str) -> None:
    module_name, _, function = SCRIPTS[name].partition(":")
    assert callable(getattr(importlib.import_module(module_name), function))
    shim = (REPO / "bin" / name).read_text()
    assert f'"{module_name}"' in shim and len(shim.splitlines()) <= 15


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_bin_shim_answers_help_from_the_repository_root(name: str) -> None:
    done = subprocess.run(
        [sys.executable, f"bin/{name}", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["backtest", "gateway-health", "trader"])
def test_a_shim_under_the_system_python_moves_itself_into_the_virtualenv(name: str) -> None:
    done = subprocess.run(
        [f"bin/{name}", "--help"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
