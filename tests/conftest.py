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

# Tests that publish a mistyped message on purpose through the Publisher (to see a subscriber drop it). Each should
# send its bad message through a raw socket instead; until then strict mode is off for it alone.
NOT_STRICT = frozenset(
    {"tests/procs/watchdog/test_watchdog_loop.py::test_malformed_heartbeats_are_counted_and_ignored"}
)


@pytest.fixture(autouse=True)
def _bus_strictness(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.nodeid in NOT_STRICT:
        monkeypatch.setenv("BUS_STRICT", "0")


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
