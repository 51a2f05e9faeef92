"""The executor's ledger: orders, fills, positions, cash, daily P&L and the halt, in one SQLite file (WAL).

Money and quantities are TEXT decimals, never REAL. A fill is applied in one transaction keyed by exec_id, so a
SIGKILL at any instant leaves all of it or none of it, and a replayed fill changes nothing.

Durability: every commit reaches the operating system before the call returns (SQLite WAL at
synchronous=NORMAL), so a SIGKILL of the executor at any instant loses nothing it committed: an order is in the
ledger before it is sent. The disk itself is synced (`sync`) right behind each burst of new orders, from a
thread, so the fsync (0.3 to 2 ms here under load) never delays an order; a halt or resume is synced before it
returns. A power failure can cut off only the newest commits, never a middle one; what they held the broker
still knows, and reconciliation finds it by orderRef and execId (an order of ours the ledger never saw halts
trading with both numbers, so nothing is ever sent twice). A file that is not a
healthy ledger stops start-up with one line and is never written to. Open positions and working orders are also
kept in memory, updated only after their transaction commits (in a group commit, reloaded if the group fails).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from procs.executor.ledger_operator import OperatorRecords
from procs.executor.migrations import SCHEMA_VERSION, LedgerError, check_healthy, migrate
from procs.executor.orders import ADOPTED, OrderRecord, apply_fill_quantity
from procs.executor.records import (
    AVG_PLACES,
    ORDER_COLUMNS,
    ORDER_INSERT,
    ORDER_MUTABLE,
    ORDER_UPDATE,
    DayRecord,
    FillIn,
    HaltState,
    PositionRecord,
    book_fill,
    correction_base,
    correction_rank,
    dec_or_none,
    order_from_row,
    order_row,
    settled,
)
from procs.executor.stops import is_stop

__all__ = [
    "SCHEMA_VERSION",
    "DayRecord",
    "FillIn",
    "HaltState",
    "Ledger",
    "LedgerError",
    "PositionRecord",
    "book_fill",
    "open_ledger",
]


class Ledger(OperatorRecords):
    """One open ledger file. Methods are synchronous and fast (one small transaction each)."""

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
        self._load()

    def _load(self) -> None:
        self.positions = {
            r["symbol"]: PositionRecord(
                r["symbol"], Decimal(r["quantity"]), Decimal(r["avg_cost"]), Decimal(r["realized"])
            )
            for r in self.conn.execute("SELECT * FROM positions")
        }
        unsettled = self.orders(working_only=True, limit=1_000_000)
        self.working = {o.client_order_id: o for o in unsettled if not is_stop(o.client_order_id)}
        self.stops = {o.client_order_id: o for o in unsettled if is_stop(o.client_order_id)}

    def close(self) -> None:
        self.sync()
        self.conn.close()

    # ------------------------------------------------------------------ orders

    def insert_order(self, order: OrderRecord) -> None:
        """Write a new order and commit: this happens before the order is sent anywhere."""
        with self._tx():
            self.conn.execute(ORDER_INSERT, tuple(order_row(order).values()))
        self.unsynced = True
        self._track(order)

    def save_order(self, order: OrderRecord) -> None:
        with self._tx():
            self._update_order(order)
        self._track(order)

    def _update_order(self, o: OrderRecord) -> None:
        row = order_row(o)
        self.conn.execute(ORDER_UPDATE, (*(row[c] for c in ORDER_MUTABLE), o.client_order_id))

    def _track(self, order: OrderRecord) -> None:
        book = self.stops if is_stop(order.client_order_id) else self.working
        if not settled(order):
            book[order.client_order_id] = order
        else:
            book.pop(order.client_order_id, None)

    def order(self, client_order_id: str) -> OrderRecord | None:
        if client_order_id in self.working:
            return self.working[client_order_id]
        if client_order_id in self.stops:
            return self.stops[client_order_id]
        row = self.conn.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE client_order_id=?", (client_order_id,)
        ).fetchone()
        return None if row is None else order_from_row(row)

    def orders(self, *, working_only: bool = False, limit: int = 200) -> list[OrderRecord]:
        """Newest first; working_only = not settled (working, or finished with fills still in flight)."""
        where = "WHERE settled = 0" if working_only else ""
        rows = self.conn.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders {where} ORDER BY created_ns DESC LIMIT ?", (limit,)
        )
        return [order_from_row(r) for r in rows]

    def created_since(self, since_ns: int) -> list[int]:
        rows = self.conn.execute("SELECT created_ns FROM orders WHERE created_ns >= ?", (since_ns,))
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ fills

    def apply_fill(self, fill: FillIn, trading_day: str, now_ns: int | None = None) -> OrderRecord | None:
        """Book a fill exactly once (by exec_id): order totals, position, cash and the day's P&L in one
        transaction. IB's correction of an execution (same execId up to its last '.', a higher suffix) replaces the
        execution it corrects; an older version seen after its correction changes nothing. Returns the updated
        order, or None when nothing was booked."""
        order = self.order(fill.client_order_id)
        if order is None:
            raise LedgerError(f"fill {fill.exec_id} is for unknown order {fill.client_order_id}")
        if self.has_fill(fill.exec_id):
            return None
        sibling = self._booked_version(fill.exec_id)
        if sibling is not None:
            if correction_rank(sibling["exec_id"]) > correction_rank(fill.exec_id):
                return None  # a replay of what a later correction already replaced
            return self._correct(sibling, fill, trading_day, now_ns)
        updated = dataclasses.replace(order)  # a copy: memory changes only after the commit
        pos = self.positions.get(fill.symbol, PositionRecord(fill.symbol))
        signed = fill.quantity if fill.side == "BUY" else -fill.quantity
        qty, avg, realized = book_fill(pos.quantity, pos.avg_cost, signed, fill.price)
        new_pos = PositionRecord(fill.symbol, qty, avg, pos.realized + realized)
        commission = fill.commission or Decimal(0)
        with self._tx():
            self._ensure_day(trading_day)
            if not self._insert_fill(fill, trading_day, time.time_ns()):
                return None  # already booked: the transaction commits nothing
            if updated.why.startswith(ADOPTED):  # learnt from its fills: its size is what has filled
                updated.quantity = max(updated.quantity, updated.filled + fill.quantity)
            apply_fill_quantity(updated, fill.quantity, fill.price)
            updated.updated_ns = time.time_ns() if now_ns is None else now_ns
            self._update_order(updated)
            self._write_position(new_pos)
            self._add_cash(-signed * fill.price - commission)
            self._add_day(trading_day, realized, commission)
            self._carry_forward(trading_day, fill.symbol, -signed * fill.price - commission, signed)
            self._raise_meta_int("last_exec_ns", fill.exec_ns)
        self.positions[fill.symbol] = new_pos
        self._track(updated)
        return updated

    def _insert_fill(self, fill: FillIn, trading_day: str, applied_ns: int) -> bool:
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO fills (exec_id, client_order_id, symbol, side, quantity, price, "
            "commission, exec_ns, applied_ns, trading_day) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                fill.exec_id,
                fill.client_order_id,
                fill.symbol,
                fill.side,
                str(fill.quantity),
                str(fill.price),
                None if fill.commission is None else str(fill.commission),
                fill.exec_ns,
                applied_ns,
                trading_day,
            ),
        )
        return cur.rowcount == 1

    def _booked_version(self, exec_id: str) -> sqlite3.Row | None:
        """The booked, not yet replaced execution that `exec_id` is another version of (IB's corrections)."""
        base = correction_base(exec_id)
        if base is None:
            return None
        rows = self.conn.execute(
            "SELECT * FROM fills WHERE substr(exec_id, 1, ?) = ? AND replaced_by IS NULL",
            (len(base) + 1, base + "."),
        )
        return next((r for r in rows if correction_base(r["exec_id"]) == base), None)

    def _correct(
        self, old: sqlite3.Row, fill: FillIn, trading_day: str, now_ns: int | None
    ) -> OrderRecord | None:
        """Replace a booked execution by its correction: the order's totals, the position (replayed in booking
        order), cash and the day's P&L and commissions all become what they would be had the correction come first."""
        order = self.order(old["client_order_id"])
        assert order is not None
        old_qty, old_price = Decimal(old["quantity"]), Decimal(old["price"])
        old_comm = dec_or_none(old["commission"]) or Decimal(0)
        old_signed = old_qty if old["side"] == "BUY" else -old_qty
        signed = fill.quantity if fill.side == "BUY" else -fill.quantity
        commission = fill.commission or Decimal(0)
        before = self.positions.get(fill.symbol, PositionRecord(fill.symbol))
        updated = dataclasses.replace(order)
        with self._tx():
            self._ensure_day(trading_day)
            self.conn.execute(
                "UPDATE fills SET replaced_by=? WHERE exec_id=?", (fill.exec_id, old["exec_id"])
            )
            self._insert_fill(dataclasses.replace(fill, client_order_id=order.client_order_id), trading_day,
                              old["applied_ns"])  # fmt: skip
            new_pos = self._replay_position(fill.symbol)
            rows = self.conn.execute(
                "SELECT quantity, price FROM fills WHERE client_order_id=? AND replaced_by IS NULL",
                (order.client_order_id,),
            ).fetchall()
            filled = sum((Decimal(r[0]) for r in rows), Decimal(0))
            updated.filled = filled
            updated.avg_fill_price = (
                (sum((Decimal(r[0]) * Decimal(r[1]) for r in rows), Decimal(0)) / filled).quantize(AVG_PLACES)
                if filled
                else Decimal(0)
            )
            updated.reported_filled = filled
            if filled >= updated.quantity:
                updated.status = "FILLED"
            updated.updated_ns = time.time_ns() if now_ns is None else now_ns
            self._update_order(updated)
            self._write_position(new_pos)
            cash = old_signed * old_price + old_comm - signed * fill.price - commission
            self._add_cash(cash)
            self._add_day(trading_day, new_pos.realized - before.realized, commission - old_comm)
            self._carry_forward(trading_day, fill.symbol, cash, signed - old_signed)
        self.positions[fill.symbol] = new_pos
        self._track(updated)
        return updated

    def _replay_position(self, symbol: str) -> PositionRecord:
        """A symbol's position from every booked execution and operator adjustment, in the order they were booked."""
        events = [
            (r["applied_ns"], Decimal(r["quantity"]) * (1 if r["side"] == "BUY" else -1), Decimal(r["price"]))
            for r in self.conn.execute(
                "SELECT applied_ns, side, quantity, price FROM fills WHERE symbol=? AND replaced_by IS NULL",
                (symbol,),
            )
        ]
        events += [
            (r["at_ns"], Decimal(r["broker"]) - Decimal(r["ledger_before"]), Decimal(r["price"]))
            for r in self.conn.execute(
                "SELECT at_ns, broker, ledger_before, price FROM adjustments WHERE symbol=?", (symbol,)
            )  # fmt: skip
        ]
        pos = PositionRecord(symbol)
        for _, signed, price in sorted(events, key=lambda e: e[0]):
            if signed:
                qty, avg, realized = book_fill(pos.quantity, pos.avg_cost, signed, price)
                pos = PositionRecord(symbol, qty, avg, pos.realized + realized)
        return pos

    def set_commission(self, exec_id: str, commission: Decimal, trading_day: str = "") -> bool:
        """Book a commission reported after its fill, once, on the trading day its fill is booked on (`trading_day`
        only for a fill row that has none). False when the fill is unknown, replaced by a correction, or its
        commission is already booked. Until then the fill's commission is unknown (NULL), never 0."""
        with self._tx():
            row = self.conn.execute(
                "SELECT trading_day, symbol FROM fills WHERE exec_id=? AND commission IS NULL AND replaced_by IS NULL",
                (exec_id,),
            ).fetchone()
            if row is None:
                return False
            day = row["trading_day"] or trading_day
            self.conn.execute("UPDATE fills SET commission=? WHERE exec_id=?", (str(commission), exec_id))
            self._ensure_day(day)
            self._add_cash(-commission)
            self._add_day(day, Decimal(0), commission)
            self._carry_forward(day, row["symbol"], -commission, Decimal(0))
        return True

    def unknown_commissions(self, trading_day: str | None = None) -> int:
        """Booked fills whose commission IB has not reported yet (of one trading day, or of any)."""
        where = "commission IS NULL AND replaced_by IS NULL" + (" AND trading_day=?" if trading_day else "")
        (n,) = self.conn.execute(
            f"SELECT count(*) FROM fills WHERE {where}", (trading_day,) if trading_day else ()
        ).fetchone()
        return int(n)

    def oldest_unknown_commission_ns(self) -> int:
        """The execution time of the oldest fill still waiting for its commission (0: none)."""
        (ns,) = self.conn.execute(
            "SELECT min(exec_ns) FROM fills WHERE commission IS NULL AND replaced_by IS NULL AND exec_ns > 0"
        ).fetchone()
        return int(ns or 0)

    def booked_fills(self, exec_ids: list[str]) -> dict[str, bool]:
        """Which of these exec ids are booked, each mapped to whether its commission is booked too (one query
        per 500 ids: a reconciliation re-reads a whole day of executions)."""
        out: dict[str, bool] = {}
        for i in range(0, len(exec_ids), 500):
            chunk = exec_ids[i : i + 500]
            rows = self.conn.execute(
                f"SELECT exec_id, commission IS NOT NULL FROM fills WHERE exec_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            out.update((r[0], bool(r[1])) for r in rows)
        return out

    def has_fill(self, exec_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM fills WHERE exec_id=?", (exec_id,)).fetchone() is not None

    def fills(self, *, replaced: bool = False) -> list[dict[str, Any]]:
        """Booked executions in execution order; `replaced` includes those a correction replaced."""
        where = "" if replaced else "WHERE replaced_by IS NULL"
        return [dict(r) for r in self.conn.execute(f"SELECT * FROM fills {where} ORDER BY exec_ns, exec_id")]

    def _write_position(self, p: PositionRecord) -> None:
        self.conn.execute(
            "INSERT INTO positions (symbol, quantity, avg_cost, realized) VALUES (?,?,?,?) "
            "ON CONFLICT(symbol) DO UPDATE SET quantity=excluded.quantity, avg_cost=excluded.avg_cost, "
            "realized=excluded.realized",
            (p.symbol, str(p.quantity), str(p.avg_cost), str(p.realized)),
        )

    def _add_cash(self, amount: Decimal) -> None:
        (cash,) = self.conn.execute("SELECT cash FROM account WHERE id=1").fetchone()
        self.conn.execute("UPDATE account SET cash=? WHERE id=1", (str(Decimal(cash) + amount),))

    # ------------------------------------------------------------------ cash and days

    def cash(self) -> Decimal:
        (cash,) = self.conn.execute("SELECT cash FROM account WHERE id=1").fetchone()
        return Decimal(cash)

    def open_day(self, trading_day: str, marks: dict[str, Decimal] | None = None) -> DayRecord:
        """The day's record, created (with the cash and positions it starts from) the first time it is asked for."""
        if self.day(trading_day) is None:
            with self._tx():
                self._ensure_day(trading_day, marks or {})
        day = self.day(trading_day)
        assert day is not None
        return day

    def _ensure_day(self, trading_day: str, marks: dict[str, Decimal] | None = None) -> None:
        (cash,) = self.conn.execute("SELECT cash FROM account WHERE id=1").fetchone()
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO days (trading_day, start_cash, realized, commissions, opened_ns) "
            "VALUES (?,?,?,?,?)",
            (trading_day, cash, "0", "0", time.time_ns()),
        )
        if cur.rowcount != 1:
            return
        for pos in self.positions.values():
            if pos.quantity != 0:
                ref = (marks or {}).get(pos.symbol)
                self.conn.execute(
                    "INSERT OR IGNORE INTO day_marks (trading_day, symbol, start_quantity, ref_price) "
                    "VALUES (?,?,?,?)",
                    (trading_day, pos.symbol, str(pos.quantity), None if ref is None else str(ref)),
                )

    def day(self, trading_day: str) -> DayRecord | None:
        row = self.conn.execute("SELECT * FROM days WHERE trading_day=?", (trading_day,)).fetchone()
        if row is None:
            return None
        start = {
            r["symbol"]: (Decimal(r["start_quantity"]), dec_or_none(r["ref_price"]))
            for r in self.conn.execute("SELECT * FROM day_marks WHERE trading_day=?", (trading_day,))
        }
        return DayRecord(
            trading_day,
            Decimal(row["start_cash"]),
            Decimal(row["realized"]),
            Decimal(row["commissions"]),
            start,
        )

    def set_day_reference(self, trading_day: str, symbol: str, price: Decimal) -> None:
        """The first price seen today for a position carried into the day (its P&L is measured from it)."""
        with self._tx():
            self.conn.execute(
                "UPDATE day_marks SET ref_price=? WHERE trading_day=? AND symbol=? AND ref_price IS NULL",
                (str(price), trading_day, symbol),
            )

    def _carry_forward(self, trading_day: str, symbol: str, cash: Decimal, quantity: Decimal) -> None:
        """A booking on a trading day before days already opened (a fill executed before midnight and booked after,
        or its late commission): each later day starts from it as if it had been booked on time, so that day's P&L
        does not count it. A position it brings into a later day gets that day's first price as its reference."""
        later = [
            r[0]
            for r in self.conn.execute("SELECT trading_day FROM days WHERE trading_day > ?", (trading_day,))
        ]
        for day in later:
            (start,) = self.conn.execute("SELECT start_cash FROM days WHERE trading_day=?", (day,)).fetchone()
            self.conn.execute(
                "UPDATE days SET start_cash=? WHERE trading_day=?", (str(Decimal(start) + cash), day)
            )
            if not quantity:
                continue
            row = self.conn.execute(
                "SELECT start_quantity FROM day_marks WHERE trading_day=? AND symbol=?", (day, symbol)
            ).fetchone()
            if row is None:
                self.conn.execute(
                    "INSERT INTO day_marks (trading_day, symbol, start_quantity, ref_price) VALUES (?,?,?,NULL)",
                    (day, symbol, str(quantity)),
                )
            else:
                self.conn.execute(
                    "UPDATE day_marks SET start_quantity=? WHERE trading_day=? AND symbol=?",
                    (str(Decimal(row[0]) + quantity), day, symbol),
                )

    def _add_day(self, trading_day: str, realized: Decimal, commission: Decimal) -> None:
        row = self.conn.execute(
            "SELECT realized, commissions FROM days WHERE trading_day=?", (trading_day,)
        ).fetchone()
        self.conn.execute(
            "UPDATE days SET realized=?, commissions=? WHERE trading_day=?",
            (str(Decimal(row[0]) + realized), str(Decimal(row[1]) + commission), trading_day),
        )

    # ------------------------------------------------------------------ halt and meta

    def halt_state(self) -> HaltState:
        row = self.conn.execute("SELECT halted, reason, since_ns, source FROM halt WHERE id=1").fetchone()
        return HaltState(bool(row[0]), row[1], row[2], row[3])

    def set_halt(self, reason: str, source: str) -> HaltState:
        with self._tx():
            self.conn.execute(
                "UPDATE halt SET halted=1, reason=?, since_ns=?, source=? WHERE id=1",
                (reason, time.time_ns(), source),
            )
        self.sync()
        return self.halt_state()

    def clear_halt(self) -> HaltState:
        with self._tx():
            self.conn.execute(
                "UPDATE halt SET halted=0, reason='', since_ns=?, source='' WHERE id=1", (time.time_ns(),)
            )
        self.sync()
        return self.halt_state()

    def meta(self, key: str, default: str = "") -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def _raise_meta_int(self, key: str, value: int) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row is None or int(row[0]) < value:
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, str(value)),
            )

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """Group commit: every write inside is one transaction, committed once at the end, so a burst of
        messages costs one commit instead of one each. Nothing written
        inside may leave the process (no order sent, nothing published) before the group ends. If the commit
        fails, nothing of the group is kept, on disk or in memory, and the error is raised."""
        if self._grouped:
            yield
            return
        # the transaction begins at the group's first write (_tx): most groups (quotes, targets that change
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

    def _abandon(self) -> None:
        """Roll the open transaction back and forget what memory learned from it."""
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("ROLLBACK")
        self._load()

    def _tx(self) -> _Transaction | _Savepoint:
        if not self._grouped:
            return _Transaction(self.conn)
        if not self._group_open:
            self.conn.execute("BEGIN IMMEDIATE")
            self._group_open = True
        return _Savepoint(self.conn)


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


def open_ledger(path: Path) -> Ledger:
    """Open (or create) the ledger at `path`, migrated to the current schema; LedgerError (one line) if unhealthy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = check_healthy(path)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # and Ledger.sync() behind new orders (see the module doc)
        conn.execute("PRAGMA busy_timeout=5000")
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LedgerError(
            f"ledger {path} could not be opened ({exc}); move it aside to start a new one"
        ) from None
    return Ledger(conn, path)
