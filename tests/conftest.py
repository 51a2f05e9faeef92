"""Fixtures every test package may use: short temporary directories for unix sockets, a clean stack home."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"


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
