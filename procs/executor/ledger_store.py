"""The ledger's file and its durability: opening it, one transaction per write or one per group commit, the WAL's
fsync behind new orders, the meta table, and the memory kept of open positions and unsettled orders.

It never decides what a booking means (ledger_fills, ledger_days and ledger_operator do), and memory here changes
only after its transaction commits: a group that fails to commit reloads memory from the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from procs.executor.migrations import LedgerError, check_healthy, migrate
from procs.executor.orders import OrderRecord
from procs.executor.records import ORDER_COLUMNS, PositionRecord, order_from_row, settled
from procs.executor.stops import is_stop


class LedgerStore:
    """One open ledger file: its connection, the transaction in force and what memory holds of it."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.positions: dict[str, PositionRecord] = {}
        self.working: dict[str, OrderRecord] = {}
        # protective stops (orderRef st-...) live apart: never working exposure toward a target, never expired
        self.stops: dict[str, OrderRecord] = {}
        self._grouped = False  # inside group(): each write is a savepoint, the group commits once
        self._group_open = False  # the group's transaction has begun (at its first write)
        self.unsynced = (
            False  # new orders were committed since the last sync(); the app syncs them behind the send
        )
        self.syncs = 0
        self._wal = f"{path}-wal"
        self.load()

    def load(self) -> None:
        """Memory from the file: every position, and every order not yet settled."""
        self.positions = {
            r["symbol"]: PositionRecord(
                r["symbol"], Decimal(r["quantity"]), Decimal(r["avg_cost"]), Decimal(r["realized"])
            )
            for r in self.conn.execute("SELECT * FROM positions")
        }
        unsettled = read_orders(self.conn, working_only=True, limit=1_000_000)
        self.working = {o.client_order_id: o for o in unsettled if not is_stop(o.client_order_id)}
        self.stops = {o.client_order_id: o for o in unsettled if is_stop(o.client_order_id)}

    def track(self, order: OrderRecord) -> None:
        """Keep a committed order in memory while it is unsettled; forget it once settled."""
        book = self.stops if is_stop(order.client_order_id) else self.working
        if not settled(order):
            book[order.client_order_id] = order
        else:
            book.pop(order.client_order_id, None)

    def close(self) -> None:
        self.sync()
        self.conn.close()

    # ------------------------------------------------------------------ transactions

    def tx(self) -> _Transaction | _Savepoint:
        """The transaction one write runs in: its own, or a savepoint of the group in force."""
        if not self._grouped:
            return _Transaction(self.conn)
        if not self._group_open:
            self.conn.execute("BEGIN IMMEDIATE")
            self._group_open = True
        return _Savepoint(self.conn)

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """Group commit: every write inside is one transaction, committed once at the end, so a burst of
        messages costs one commit instead of one each. Nothing written
        inside may leave the process (no order sent, nothing published) before the group ends. If the commit
        fails, nothing of the group is kept, on disk or in memory, and the error is raised."""
        if self._grouped:
            yield
            return
        # the transaction begins at the group's first write (tx): most groups (quotes, targets that change
        # nothing) write nothing and cost no BEGIN/COMMIT at all
        self._grouped = True
        self._group_open = False
        try:
            yield
        except BaseException:
            self._grouped = False
            if self._group_open:
                self._abandon()
            raise
        self._grouped = False
        if not self._group_open:
            return
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """Roll the open transaction back and forget what memory learned from it."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK")
        self.load()

    def sync(self) -> None:
        """fsync the WAL file, and with it every commit made so far (what SQLite at synchronous=FULL does at each
        commit). Safe from any thread: it touches only the file, never the connection. Raises OSError if the
        disk fails, which must stop the executor."""
        try:
            fd = os.open(self._wal, os.O_RDONLY)
        except FileNotFoundError:  # no commit since the last connection closed and removed it
            return
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        self.syncs += 1

    # ------------------------------------------------------------------ meta

    def meta(self, key: str, default: str = "") -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.tx():
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def raise_meta_int(self, key: str, value: int) -> None:
        """Inside the caller's transaction: a counter that only ever goes up (the newest execution seen)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None or int(row[0]) < value:
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, str(value)),
            )


def read_orders(conn: sqlite3.Connection, *, working_only: bool, limit: int) -> list[OrderRecord]:
    """Newest first; working_only = not settled (working, or finished with fills still in flight)."""
    where = "WHERE settled = 0" if working_only else ""
    rows = conn.execute(
        f"SELECT {ORDER_COLUMNS} FROM orders {where} ORDER BY created_ns DESC LIMIT ?", (limit,)
    )
    return [order_from_row(r) for r in rows]


def connect(path: Path) -> sqlite3.Connection:
    """The ledger's connection at `path` (created if new), migrated to the current schema: WAL at
    synchronous=NORMAL, with LedgerStore.sync() behind new orders. LedgerError (one line) if unhealthy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = check_healthy(path)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # and LedgerStore.sync() behind new orders (see ledger.py)
        conn.execute("PRAGMA busy_timeout=5000")
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LedgerError(
            f"ledger {path} could not be opened ({exc}); move it aside to start a new one"
        ) from None
    return conn


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (and on an early return inside it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


class _Savepoint:
    """One write inside a group: undone alone on an exception, committed with the group."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("SAVEPOINT write")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.conn.execute("ROLLBACK TO write")
        self.conn.execute("RELEASE write")
