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

This module is the ledger's front door and nothing more: `Ledger` holds one LedgerStore and hands each call to the
module that owns it, where its SQL lives: ledger_fills (orders and fills, the write path), ledger_queries (reads),
ledger_days (cash and the day's figures), ledger_operator (halt, mismatches, flatten, adjustments, identity) and
ledger_store (the file, transactions, group commit, sync). It never touches SQL itself.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

from procs.executor import ledger_days, ledger_fills, ledger_operator, ledger_queries
from procs.executor.ledger_operator import FlattenIntent
from procs.executor.ledger_store import LedgerStore, connect
from procs.executor.migrations import SCHEMA_VERSION, LedgerError
from procs.executor.orders import OrderRecord
from procs.executor.records import DayRecord, FillIn, HaltState, PositionRecord, book_fill

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


class Ledger:
    """One open ledger file. Methods are synchronous and fast (one small transaction each)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._store = LedgerStore(conn, path)

    # ------------------------------------------------------------------ the file and what memory holds of it

    @property
    def conn(self) -> sqlite3.Connection:
        return self._store.conn

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def positions(self) -> dict[str, PositionRecord]:
        return self._store.positions

    @property
    def working(self) -> dict[str, OrderRecord]:
        """Unsettled orders, protective stops apart."""
        return self._store.working

    @property
    def stops(self) -> dict[str, OrderRecord]:
        """Unsettled protective stops (orderRef st-...)."""
        return self._store.stops

    @property
    def unsynced(self) -> bool:
        """New orders were committed since the last sync(); the app syncs them behind the send."""
        return self._store.unsynced

    @unsynced.setter
    def unsynced(self, value: bool) -> None:
        self._store.unsynced = value

    @property
    def syncs(self) -> int:
        return self._store.syncs

    def group(self) -> AbstractContextManager[None]:
        """Group commit (LedgerStore.group): every write inside is one transaction, committed once at the end."""
        return self._store.group()

    def sync(self) -> None:
        self._store.sync()

    def close(self) -> None:
        self._store.close()

    def meta(self, key: str, default: str = "") -> str:
        return self._store.meta(key, default)

    def set_meta(self, key: str, value: str) -> None:
        self._store.set_meta(key, value)

    # ------------------------------------------------------------------ orders and fills (ledger_fills)

    def insert_order(self, order: OrderRecord) -> None:
        """Write a new order and commit: this happens before the order is sent anywhere."""
        ledger_fills.insert_order(self._store, order)

    def save_order(self, order: OrderRecord) -> None:
        ledger_fills.save_order(self._store, order)

    def apply_fill(self, fill: FillIn, trading_day: str, now_ns: int | None = None) -> OrderRecord | None:
        """Book a fill exactly once (by exec_id); None when nothing was booked."""
        return ledger_fills.apply_fill(self._store, fill, trading_day, now_ns)

    def set_commission(self, exec_id: str, commission: Decimal, trading_day: str = "") -> bool:
        """Book a commission reported after its fill, once; False when there was nothing to book."""
        return ledger_fills.set_commission(self._store, exec_id, commission, trading_day)

    # ------------------------------------------------------------------ reads (ledger_queries)

    def order(self, client_order_id: str) -> OrderRecord | None:
        return ledger_queries.order(self._store, client_order_id)

    def orders(self, *, working_only: bool = False, limit: int = 200) -> list[OrderRecord]:
        """Newest first; working_only = not settled (working, or finished with fills still in flight)."""
        return ledger_queries.orders(self._store, working_only=working_only, limit=limit)

    def created_since(self, since_ns: int) -> list[int]:
        return ledger_queries.created_since(self._store, since_ns)

    def has_fill(self, exec_id: str) -> bool:
        return ledger_queries.has_fill(self._store, exec_id)

    def fills(self, *, replaced: bool = False) -> list[dict[str, Any]]:
        return ledger_queries.fills(self._store, replaced=replaced)

    def fill_count(self, symbol: str) -> int:
        return ledger_queries.fill_count(self._store, symbol)

    def booked_fills(self, exec_ids: list[str]) -> dict[str, bool]:
        return ledger_queries.booked_fills(self._store, exec_ids)

    def unknown_commissions(self, trading_day: str | None = None) -> int:
        return ledger_queries.unknown_commissions(self._store, trading_day)

    def oldest_unknown_commission_ns(self) -> int:
        return ledger_queries.oldest_unknown_commission_ns(self._store)

    # ------------------------------------------------------------------ cash and days (ledger_days)

    def cash(self) -> Decimal:
        return ledger_days.cash(self._store)

    def open_day(self, trading_day: str, marks: dict[str, Decimal] | None = None) -> DayRecord:
        return ledger_days.open_day(self._store, trading_day, marks)

    def day(self, trading_day: str) -> DayRecord | None:
        return ledger_days.day(self._store, trading_day)

    def set_day_reference(self, trading_day: str, symbol: str, price: Decimal) -> None:
        ledger_days.set_day_reference(self._store, trading_day, symbol, price)

    # ------------------------------------------------------------------ operator records (ledger_operator)

    def halt_state(self) -> HaltState:
        return ledger_operator.halt_state(self._store)

    def set_halt(self, reason: str, source: str) -> HaltState:
        return ledger_operator.set_halt(self._store, reason, source)

    def clear_halt(self) -> HaltState:
        return ledger_operator.clear_halt(self._store)

    def claim_identity(self, identity: dict[str, str], shown: dict[str, str]) -> None:
        ledger_operator.claim_identity(self._store, identity, shown)

    def mismatches(self) -> dict[str, tuple[Decimal, Decimal]]:
        return ledger_operator.mismatches(self._store)

    def set_mismatch(self, symbol: str, ledger: Decimal, broker: Decimal) -> None:
        ledger_operator.set_mismatch(self._store, symbol, ledger, broker)

    def clear_mismatch(self, symbol: str) -> None:
        ledger_operator.clear_mismatch(self._store, symbol)

    def flattening(self) -> dict[str, FlattenIntent]:
        return ledger_operator.flattening(self._store)

    def set_flatten(self, symbols: list[str]) -> None:
        ledger_operator.set_flatten(self._store, symbols)

    def clear_flatten(self) -> None:
        ledger_operator.clear_flatten(self._store)

    def accept_broker(
        self,
        symbol: str,
        broker: Decimal,
        price: Decimal,
        *,
        method: str,
        operator: str,
        reason: str,
        trading_day: str,
    ) -> dict[str, Any]:
        """Set the ledger's position in `symbol` to the broker's, with an audit row; the symbol's mismatch ends."""
        return ledger_operator.accept_broker(
            self._store,
            symbol,
            broker,
            price,
            method=method,
            operator=operator,
            reason=reason,
            trading_day=trading_day,
        )

    def adjustments(self) -> list[dict[str, Any]]:
        return ledger_operator.adjustments(self._store)


def open_ledger(path: Path) -> Ledger:
    """Open (or create) the ledger at `path`, migrated to the current schema; LedgerError (one line) if unhealthy."""
    return Ledger(connect(path), path)
