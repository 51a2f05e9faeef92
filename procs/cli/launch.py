"""How a bin/ shim runs its command from a checkout: in the stack's virtualenv, with the repository importable.

Standard library only, and nothing at import time: it runs under whatever python3 is first on PATH, before the
virtualenv (and so before any dependency) is there. It must never do a command's work itself.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import NoReturn


def launch(script: str, module: str, use_venv: bool = True) -> NoReturn:
    """Run `module`'s main() as bin/`script`'s command and exit with its code.

    use_venv: outside the repository's .venv, re-execute the script with .venv's python first (when there is one),
    so a plain `bin/trader` works whatever python3 is on PATH.
    """
    repo = Path(script).resolve().parent.parent
    venv_python = repo / ".venv" / "bin" / "python"
    if (
        use_venv
        and venv_python.exists()
        and Path(sys.prefix).resolve() != venv_python.parent.parent.resolve()
    ):
        os.execv(str(venv_python), [str(venv_python), script, *sys.argv[1:]])
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    raise SystemExit(importlib.import_module(module).main())
