"""The ledger's reads of orders and fills: one order, the newest orders, which executions are booked, and the
fills still waiting for IB's commission report.

Reads only: nothing here ever writes, begins a transaction or changes what memory holds.
"""

from __future__ import annotations

from typing import Any

from procs.executor.ledger_store import LedgerStore, read_orders
from procs.executor.orders import OrderRecord
from procs.executor.records import ORDER_COLUMNS, order_from_row


def order(store: LedgerStore, client_order_id: str) -> OrderRecord | None:
    """An unsettled order from memory, any other from the file."""
    if client_order_id in store.working:
        return store.working[client_order_id]
    if client_order_id in store.stops:
        return store.stops[client_order_id]
    row = store.conn.execute(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE client_order_id=?", (client_order_id,)
    ).fetchone()
    return None if row is None else order_from_row(row)


def orders(store: LedgerStore, *, working_only: bool = False, limit: int = 200) -> list[OrderRecord]:
    """Newest first; working_only = not settled (working, or finished with fills still in flight)."""
    return read_orders(store.conn, working_only=working_only, limit=limit)


def created_since(store: LedgerStore, since_ns: int) -> list[int]:
    rows = store.conn.execute("SELECT created_ns FROM orders WHERE created_ns >= ?", (since_ns,))
    return [r[0] for r in rows]


def has_fill(store: LedgerStore, exec_id: str) -> bool:
    return store.conn.execute("SELECT 1 FROM fills WHERE exec_id=?", (exec_id,)).fetchone() is not None


def fills(store: LedgerStore, *, replaced: bool = False) -> list[dict[str, Any]]:
    """Booked executions in execution order; `replaced` includes those a correction replaced."""
    where = "" if replaced else "WHERE replaced_by IS NULL"
    return [dict(r) for r in store.conn.execute(f"SELECT * FROM fills {where} ORDER BY exec_ns, exec_id")]


def fill_count(store: LedgerStore, symbol: str) -> int:
    """A symbol's booked fills, corrections counted once."""
    (n,) = store.conn.execute(
        "SELECT COUNT(*) FROM fills WHERE symbol=? AND replaced_by IS NULL", (symbol,)
    ).fetchone()
    return int(n)


def booked_fills(store: LedgerStore, exec_ids: list[str]) -> dict[str, bool]:
    """Which of these exec ids are booked, each mapped to whether its commission is booked too (one query
    per 500 ids: a reconciliation re-reads a whole day of executions)."""
    out: dict[str, bool] = {}
    for i in range(0, len(exec_ids), 500):
        chunk = exec_ids[i : i + 500]
        rows = store.conn.execute(
            f"SELECT exec_id, commission IS NOT NULL FROM fills WHERE exec_id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        out.update((r[0], bool(r[1])) for r in rows)
    return out


def unknown_commissions(store: LedgerStore, trading_day: str | None = None) -> int:
    """Booked fills whose commission IB has not reported yet (of one trading day, or of any)."""
    where = "commission IS NULL AND replaced_by IS NULL" + (" AND trading_day=?" if trading_day else "")
    (n,) = store.conn.execute(
        f"SELECT count(*) FROM fills WHERE {where}", (trading_day,) if trading_day else ()
    ).fetchone()
    return int(n)


def oldest_unknown_commission_ns(store: LedgerStore) -> int:
    """The execution time of the oldest fill still waiting for its commission (0: none)."""
    (ns,) = store.conn.execute(
        "SELECT min(exec_ns) FROM fills WHERE commission IS NULL AND replaced_by IS NULL AND exec_ns > 0"
    ).fetchone()
    return int(ns or 0)
