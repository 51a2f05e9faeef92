"""The day's records the dashboard and the daily report read: the executor's ledger (read-only) and the
monitor's equity journal (var/data/equity/DAY.jsonl: P&L against the broker's account values over the day).

The ledger is opened with SQLite's `mode=ro` URI on every read and closed at once: this module can never
write to it, lock it for writing, or create it. The equity journal is the monitor's own file, appended to.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def ledger_path(data_dir: Path) -> Path:
    return data_dir / "ledger.sqlite"


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection (FileNotFoundError when there is no ledger yet: never creates one)."""
    if not path.exists():
        raise FileNotFoundError(path)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def fills_on(path: Path, day: str) -> list[dict[str, Any]]:
    """The day's fills as the ledger booked them (corrections replaced), oldest first."""
    try:
        with read_only(path) as conn:
            rows = conn.execute(
                "SELECT exec_id, client_order_id, symbol, side, quantity, price, commission, exec_ns FROM fills "
                "WHERE trading_day=? AND replaced_by IS NULL ORDER BY exec_ns, exec_id",
                (day,),
            ).fetchall()
    except (FileNotFoundError, sqlite3.Error):
        return []
    return [
        {
            "exec_id": r["exec_id"],
            "client_order_id": r["client_order_id"],
            "symbol": r["symbol"],
            "side": r["side"],
            "quantity": r["quantity"],
            "price": r["price"],
            "commission": r["commission"] or "",
            "time_ns": r["exec_ns"],
        }
        for r in rows
    ]


def equity_path(data_dir: Path, day: str) -> Path:
    if not DAY.fullmatch(day):
        raise ValueError(f"not a date: {day!r}")
    return data_dir / "equity" / f"{day}.jsonl"


def append_equity(data_dir: Path, day: str, sample: dict[str, Any]) -> None:
    """One sample of the day's P&L and the broker's account values (OSError is the caller's to log)."""
    path = equity_path(data_dir, day)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, json.dumps(sample, separators=(",", ":"), default=str).encode() + b"\n")
    finally:
        os.close(fd)


def read_equity(data_dir: Path, day: str) -> list[dict[str, Any]]:
    """The day's samples, oldest first; a torn or bad line is skipped."""
    try:
        text = equity_path(data_dir, day).read_text(errors="replace")
    except (FileNotFoundError, ValueError):
        return []
    out = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                out.append(doc)
    return out
