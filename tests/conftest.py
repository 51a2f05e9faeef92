"""Fixtures every test package may use: short temporary directories for unix sockets, a clean stack home."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"

# The bus contract is strict in the tests (shared/contract.py): a mistyped or unknown message raises at the
# publisher, in this process and in every program a test starts (they inherit the environment).
os.environ.setdefault("BUS_STRICT", "1")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path: unix socket paths must stay under ~107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ib", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def stack_env(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated stack home: STACK_HOME and VAR_DIR in a short temp dir, no .env of the developer's."""
    monkeypatch.setenv("STACK_HOME", str(short_tmp))
    monkeypatch.setenv("VAR_DIR", str(short_tmp / "var"))
    return short_tmp


# ---------------------------------------------------------------- the fast loop: `integration`, marked here alone

# fixtures that start a process or open a socket to one
INTEGRATION_FIXTURES = frozenset({"shared_sim", "sim", "nautilus_python"})
# what in a test module's source means it starts processes or talks over real sockets to them
INTEGRATION_WORDS = (
    "running_stack",
    "running_sim",
    "subprocess",
    "Popen",
    "RunningSim",
    "sim_harness",
    "bridge_harness",
    "tests.procs.executor.cluster",
    "selenium",
    "IB()",
)
INTEGRATION_NAMES = ("test_e2e", "test_integration", "test_stack", "test_var_dir", "_process", "_supervised")


def _module_is_integration(path: Path, cache: dict[Path, bool]) -> bool:
    if path not in cache:
        try:
            source = path.read_text(errors="replace")
        except OSError:
            source = ""
        cache[path] = any(w in source for w in INTEGRATION_WORDS) or any(
            n in path.stem for n in INTEGRATION_NAMES
        )
    return cache[path]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "integration: starts processes or real sockets (simulator, stack, bridge); `make test-fast` skips it",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `integration` every test that uses a process or socket fixture or lives in a module that starts
    processes (no per-file marks to keep in step)."""
    cache: dict[Path, bool] = {}
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & INTEGRATION_FIXTURES or _module_is_integration(Path(str(item.path)), cache):
            item.add_marker(pytest.mark.integration)
