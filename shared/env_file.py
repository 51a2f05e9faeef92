"""Where the stack's `.env` lives and what is checked of the file itself: no key the settings do not know (a typo
would otherwise silently leave a limit at its default), and no one but its owner may read it (it names the account).

It must never parse or validate a setting's value (shared/config.py does) nor print a value from the file.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from dotenv import dotenv_values

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A setting is missing or wrong; str() is one line naming the key and the remedy."""


def stack_home() -> Path:
    """The directory holding `.env` and `var/`: $STACK_HOME, else the repository root."""
    return Path(os.environ.get("STACK_HOME") or REPO_ROOT)


def env_file_path() -> Path:
    return stack_home() / ".env"


def refuse_unknown_keys(path: Path, settings: Iterable[str]) -> None:
    """ConfigError (one line, with the nearest setting's name) for the first key in `path` not in `settings`."""
    known = [name.upper() for name in settings]
    try:
        keys = list(dotenv_values(path, encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"settings: cannot read {path}: {exc}") from None
    for key in keys:
        if key.upper() in known:
            continue
        nearest = difflib.get_close_matches(key.upper(), known, n=1, cutoff=0.6)
        hint = f"did you mean {nearest[0]}?" if nearest else "every setting is listed in .env.example;"
        raise ConfigError(
            f"setting {key} in {path} is not a setting of the stack: {hint} fix or remove that line"
        )


def check_env_file_private(path: Path | None = None) -> None:
    """ConfigError (one line) when `.env` is readable or writable by anyone but its owner (it names the account).

    Called where the stack starts (bin/stack start, every supervised program), not by read-only tools."""
    path = path if path is not None else env_file_path()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        raise ConfigError(
            f"{path} is open to other users (mode {mode:04o}); make it private with: chmod 600 {path}"
        )
