"""The NautilusTrader virtual environment (.venv-nautilus): created with `python -m venv` and the pins of
tests/nautilus/requirements.txt on first use, reused while its stamp matches those pins.

Used by the peer test's session fixture and by `bench/pipeline.py --peer nautilus`. It must never install into the
project's own .venv (NautilusTrader pins its own ibapi fork and pandas), and never touch anything else.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
VENV = ROOT / ".venv-nautilus"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
NODE_SCRIPT = Path(__file__).resolve().parent / "node.py"
INSTALL_TIMEOUT = 900  # a clean machine downloads ~150 MB of wheels


def venv_python() -> Path:
    return VENV / "bin" / "python"


def _pins_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def ensure_nautilus_venv(log: bool = True) -> Path:
    """The venv's python, installing it first when missing or installed from other pins (one process at a time)."""
    stamp = VENV / ".installed"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(ROOT / ".venv-nautilus.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions at once: the second waits, then reuses
        if stamp.exists() and stamp.read_text().strip() == _pins_digest() and venv_python().exists():
            return venv_python()
        began = time.monotonic()
        if log:
            print(f"installing NautilusTrader into {VENV} (once) ...", file=sys.stderr, flush=True)
        stamp.unlink(missing_ok=True)
        if not venv_python().exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, timeout=120)
        subprocess.run(
            [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            + ["-r", str(REQUIREMENTS)],
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
        stamp.write_text(_pins_digest() + "\n")
        if log:
            print(f"NautilusTrader installed in {time.monotonic() - began:.0f}s", file=sys.stderr, flush=True)
        return venv_python()
