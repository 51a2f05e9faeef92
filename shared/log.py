"""The one logger setup: loguru, one file per program under var/log/, WARNING+ also to stderr.

Every line passes through the account mask; stdlib logging (ib_async, asyncio) is routed into loguru.
Never log an unmasked account id or a secret; never let a repeated line flood the file (use log_every).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

    from shared.config import Settings

_last_emitted: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def _mask_record(record: Record) -> None:
    from shared.config import mask_secrets

    record["message"] = mask_secrets(record["message"])


class _InterceptHandler(logging.Handler):
    """Sends stdlib logging records (ib_async's) to loguru at the same level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(
    program: str, settings: Settings | None = None, *, log_dir: Path | None = None
) -> Path | None:
    """Configure loguru for `program`; returns the log file path (None when logging to stderr only)."""
    level = settings.log_level if settings else "INFO"
    _sink_floor["level"] = min(logger.level(level).no, logger.level("WARNING").no)
    logger.remove()
    logger.configure(patcher=_mask_record, extra={"program": program})
    fmt = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {extra[program]} | {name}:{line} | {message}"
    logger.add(sys.stderr, level="WARNING", format=fmt, backtrace=False, diagnose=False)
    path: Path | None = None
    directory = log_dir or (settings.log_dir if settings else None)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{program}.log"
        logger.add(
            path,
            level=level,
            format=fmt,
            rotation=settings.log_rotation if settings else "10 MB",
            retention=settings.log_retention if settings else 10,
            serialize=bool(settings and settings.log_json),
            enqueue=False,
            backtrace=False,
            diagnose=False,  # diagnose would print local variables: account ids, secrets
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    for noisy in ("ib_async.wrapper", "ib_async.client"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    return path


def log_every(key: str, seconds: float, level: str, message: str, **extra: Any) -> bool:
    """Log `message` at most once per `seconds` for `key`; says how many were suppressed meanwhile."""
    now = time.monotonic()
    last = _last_emitted.get(key)
    if last is not None and now - last < seconds:
        _suppressed[key] = _suppressed.get(key, 0) + 1
        return False
    _last_emitted[key] = now
    skipped = _suppressed.pop(key, 0)
    suffix = f" ({skipped} similar suppressed)" if skipped else ""
    logger.opt(depth=1).bind(**extra).log(level, message + suffix)
    return True


def event(name: str, level: str = "INFO", **fields: Any) -> None:
    """One structured log line for a decision: `name key=value ...`, the fields also bound for JSON logs."""
    if level == "DEBUG" and _sink_floor["level"] > logging.DEBUG:
        return  # the hot paths call this for every order event: skip the formatting when nobody reads it
    text = " ".join(f"{k}={v}" for k, v in fields.items())
    logger.opt(depth=1).bind(event=name, **fields).log(level, f"{name} {text}")


_sink_floor = {"level": 20}  # the lowest level any sink takes, set by setup_logging (INFO until then)
