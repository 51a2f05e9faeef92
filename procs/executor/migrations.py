"""The ledger's schema and its migrations, applied in order, each in one transaction, recorded in schema_version.

A migration is never edited once shipped: a change is a new numbered step. A file that is not a SQLite database,
fails its integrity check, or was written by a newer executor is refused with one line and left untouched.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


class LedgerError(Exception):
    """The ledger cannot be used; str() is one line saying which file and what to do."""


MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE orders (
            client_order_id TEXT PRIMARY KEY,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
            quantity TEXT NOT NULL,
            order_type TEXT NOT NULL,
            limit_price TEXT,
            status TEXT NOT NULL,
            filled TEXT NOT NULL,
            reported_filled TEXT NOT NULL,
            avg_fill_price TEXT NOT NULL,
            broker_order_id INTEGER NOT NULL DEFAULT 0,
            perm_id INTEGER NOT NULL DEFAULT 0,
            reason TEXT NOT NULL DEFAULT '',
            error_code INTEGER NOT NULL DEFAULT 0,
            reduce_only INTEGER NOT NULL DEFAULT 0,
            created_ns INTEGER NOT NULL,
            updated_ns INTEGER NOT NULL,
            sent_ns INTEGER NOT NULL DEFAULT 0,
            settled INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX orders_unsettled ON orders (settled, created_ns);
        CREATE TABLE fills (
            exec_id TEXT PRIMARY KEY,
            client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),
            symbol TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
            quantity TEXT NOT NULL,
            price TEXT NOT NULL,
            commission TEXT,
            exec_ns INTEGER NOT NULL,
            applied_ns INTEGER NOT NULL,
            trading_day TEXT NOT NULL
        );
        CREATE INDEX fills_by_order ON fills (client_order_id);
        CREATE TABLE positions (
            symbol TEXT PRIMARY KEY,
            quantity TEXT NOT NULL,
            avg_cost TEXT NOT NULL,
            realized TEXT NOT NULL
        );
        CREATE TABLE account (id INTEGER PRIMARY KEY CHECK (id = 1), cash TEXT NOT NULL);
        INSERT INTO account (id, cash) VALUES (1, '0');
        CREATE TABLE halt (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            halted INTEGER NOT NULL,
            reason TEXT NOT NULL,
            since_ns INTEGER NOT NULL,
            source TEXT NOT NULL
        );
        INSERT INTO halt (id, halted, reason, since_ns, source) VALUES (1, 0, '', 0, '');
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    ),
    (
        2,
        """
        CREATE TABLE days (
            trading_day TEXT PRIMARY KEY,
            start_cash TEXT NOT NULL,
            realized TEXT NOT NULL,
            commissions TEXT NOT NULL,
            opened_ns INTEGER NOT NULL
        );
        CREATE TABLE day_marks (
            trading_day TEXT NOT NULL,
            symbol TEXT NOT NULL,
            start_quantity TEXT NOT NULL,
            ref_price TEXT,
            PRIMARY KEY (trading_day, symbol)
        );
        """,
    ),
    (
        3,
        """
        ALTER TABLE orders ADD COLUMN decided_on_ns INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE orders ADD COLUMN why TEXT NOT NULL DEFAULT ''
        """,
    ),
    (
        4,
        """
        ALTER TABLE orders ADD COLUMN unconfirmed TEXT NOT NULL DEFAULT '';
        ALTER TABLE fills ADD COLUMN replaced_by TEXT;
        CREATE TABLE adjustments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            symbol TEXT NOT NULL,
            ledger_before TEXT NOT NULL,
            broker TEXT NOT NULL,
            price TEXT NOT NULL,
            cash_adjustment TEXT NOT NULL,
            method TEXT NOT NULL,
            operator TEXT NOT NULL,
            reason TEXT NOT NULL,
            at_ns INTEGER NOT NULL,
            trading_day TEXT NOT NULL
        );
        CREATE TABLE mismatches (
            symbol TEXT PRIMARY KEY,
            ledger TEXT NOT NULL,
            broker TEXT NOT NULL,
            since_ns INTEGER NOT NULL
        );
        CREATE TABLE flatten (symbol TEXT PRIMARY KEY, since_ns INTEGER NOT NULL, fills_before INTEGER NOT NULL)
        """,
    ),
    (
        5,
        # the reference price (mid, else last) when the order was decided: the daily report's slippage
        "ALTER TABLE orders ADD COLUMN decision_quote TEXT",
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_ns INTEGER NOT NULL)"
)


def check_healthy(path: Path) -> sqlite3.Connection:
    """A connection to `path` after proving it is a healthy ledger (or an empty/new file); nothing written yet."""
    fresh = not path.exists() or path.stat().st_size == 0
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if fresh:
        return conn
    try:
        verdict = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if verdict != ["ok"]:
            raise LedgerError(
                f"ledger {path} is corrupt ({'; '.join(verdict[:2])}); it was left untouched: "
                "move it aside (or restore a backup) and restart"
            )
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "schema_version" not in tables:
            raise LedgerError(f"{path} is a SQLite file but not an executor ledger; point VAR_DIR elsewhere")
        if "schema_version" in tables:
            (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"ledger {path} has schema {version}, newer than this executor's {SCHEMA_VERSION}; "
                    "run the newer executor or restore a backup"
                )
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LedgerError(
            f"ledger {path} is corrupt ({exc}); it was left untouched: move it aside (or restore a backup) and restart"
        ) from None
    except LedgerError:
        conn.close()
        raise
    return conn


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute(_VERSION_TABLE)
    (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply every migration above the file's version up to `target`; returns the version reached."""
    version = current_version(conn)
    for number, sql in MIGRATIONS:
        if version < number <= target:
            _apply(conn, number, sql)
            version = number
    return version


def _apply(conn: sqlite3.Connection, number: int, sql: str) -> None:
    # DDL is transactional in SQLite: a migration killed half-way leaves the previous version intact
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_version (version, applied_ns) VALUES (?, ?)", (number, time.time_ns())
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
