"""The NautilusTrader virtual environment for the peer tests: installed once per machine (about 20 s from a clean
pip cache here), reused while its pins stay the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.nautilus.venv import ensure_nautilus_venv


@pytest.fixture(scope="session")
def nautilus_python() -> Path:
    return ensure_nautilus_venv()
