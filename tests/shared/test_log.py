"""Logging: one file per program, account ids masked in every line, stdlib logging captured, rate limits."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from loguru import logger

from shared.log import log_every, setup_logging


def test_account_ids_are_masked_and_stdlib_logging_lands_in_the_file(short_tmp: Path) -> None:
    path = setup_logging("bridge", log_dir=short_tmp)
    assert path == short_tmp / "bridge.log"
    logger.info("managed accounts: DU1234567")
    logging.getLogger("ib_async.client").warning("Peer closed connection for DU7654321")
    logger.complete()
    text = path.read_text()
    assert "DU1234567" not in text and "DU7654321" not in text
    assert "DU****567" in text and "Peer closed connection" in text


def test_log_every_suppresses_repeats_and_says_how_many(short_tmp: Path) -> None:
    path = setup_logging("watchdog", log_dir=short_tmp)
    results = [log_every("k", 60.0, "WARNING", "farm down") for _ in range(5)]
    assert results == [True, False, False, False, False]
    logger.complete()
    assert path is not None and path.read_text().count("farm down") == 1


def test_debug_events_are_written_only_when_the_log_level_takes_them(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.config import load_settings
    from shared.log import event

    path = setup_logging("bridge", log_dir=short_tmp)  # INFO, the default
    event("order_status", "DEBUG", client_order_id="ex-1", status="FILLED")
    event("order_placed", client_order_id="ex-1")
    logger.complete()
    assert path is not None
    text = path.read_text()
    assert "order_placed client_order_id=ex-1" in text and "order_status" not in text

    for key, value in {"STACK_HOME": short_tmp, "VAR_DIR": short_tmp / "var", "LOG_LEVEL": "DEBUG"}.items():
        monkeypatch.setenv(key, str(value))
    debug_path = setup_logging("executor", load_settings(), log_dir=short_tmp)
    event("order_status", "DEBUG", client_order_id="ex-2", status="FILLED")
    logger.complete()
    assert (
        debug_path is not None and "order_status client_order_id=ex-2 status=FILLED" in debug_path.read_text()
    )
