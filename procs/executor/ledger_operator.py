"""The ledger's operator records: position mismatches that block a symbol, the operator's flatten intents, the
audited adjustments that set a symbol to the broker's position, and which account and mode the ledger belongs to.

A part of Ledger (mixed in), kept apart because none of it is on the order path. Every change is one transaction;
nothing here ever deletes a fill or an order.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from procs.executor.migrations import LedgerError
from procs.executor.records import PositionRecord, book_fill

IDENTITY_KEYS = ("account", "trading_mode", "execution")


@dataclass(frozen=True, slots=True)
class FlattenIntent:
    symbol: str
    since_ns: int
    fills_before: int  # the symbol's booked fills when the intent began: the fills it took are the rest


class OperatorRecords:
    if TYPE_CHECKING:  # provided by Ledger
        conn: sqlite3.Connection
        positions: dict[str, PositionRecord]

        def _tx(self) -> AbstractContextManager[None]: ...
        def _write_position(self, p: PositionRecord) -> None: ...
        def _add_cash(self, amount: Decimal) -> None: ...
        def _ensure_day(self, trading_day: str, marks: dict[str, Decimal] | None = None) -> None: ...
        def _add_day(self, trading_day: str, realized: Decimal, commission: Decimal) -> None: ...
        def meta(self, key: str, default: str = "") -> str: ...
        def set_meta(self, key: str, value: str) -> None: ...
        def sync(self) -> None: ...

    # ------------------------------------------------------------------ identity

    def claim_identity(self, identity: dict[str, str], shown: dict[str, str]) -> None:
        """Bind a new ledger to its account, trading mode and execution mode; LedgerError (one line naming both)
        when the ledger was written for others. `shown` is the same identity as it may be printed (masked)."""
        stored = {k: self.meta(f"identity_{k}") for k in IDENTITY_KEYS}
        if not any(stored.values()):
            for k in IDENTITY_KEYS:
                self.set_meta(f"identity_{k}", identity[k])
                self.set_meta(f"identity_{k}_shown", shown[k])
            return
        if stored != {k: identity[k] for k in IDENTITY_KEYS}:
            was = " ".join(self.meta(f"identity_{k}_shown") or stored[k] for k in IDENTITY_KEYS)
            now = " ".join(shown[k] for k in IDENTITY_KEYS)
            raise LedgerError(
                f"the ledger belongs to {was} but the settings say {now}: point VAR_DIR at that account's "
                "ledger, or move this one aside to start a new one"
            )

    # ------------------------------------------------------------------ mismatches

    def mismatches(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Symbols blocked by a confirmed position mismatch: symbol -> (ledger, broker) when it was confirmed."""
        return {
            r[0]: (Decimal(r[1]), Decimal(r[2]))
            for r in self.conn.execute("SELECT symbol, ledger, broker FROM mismatches")
        }

    def set_mismatch(self, symbol: str, ledger: Decimal, broker: Decimal) -> None:
        with self._tx():
            self.conn.execute(
                "INSERT INTO mismatches (symbol, ledger, broker, since_ns) VALUES (?,?,?,?) "
                "ON CONFLICT(symbol) DO UPDATE SET ledger=excluded.ledger, broker=excluded.broker",
                (symbol, str(ledger), str(broker), time.time_ns()),
            )

    def clear_mismatch(self, symbol: str) -> None:
        with self._tx():
            self.conn.execute("DELETE FROM mismatches WHERE symbol=?", (symbol,))

    # ------------------------------------------------------------------ flatten

    def flattening(self) -> dict[str, FlattenIntent]:
        return {
            r[0]: FlattenIntent(r[0], r[1], r[2])
            for r in self.conn.execute("SELECT symbol, since_ns, fills_before FROM flatten")
        }

    def set_flatten(self, symbols: list[str]) -> None:
        with self._tx():
            for symbol in symbols:
                self.conn.execute(
                    "INSERT OR IGNORE INTO flatten (symbol, since_ns, fills_before) VALUES (?,?,?)",
                    (symbol, time.time_ns(), self.fill_count(symbol)),
                )
        self.sync()

    def clear_flatten(self) -> None:
        with self._tx():
            self.conn.execute("DELETE FROM flatten")
        self.sync()

    def fill_count(self, symbol: str) -> int:
        (n,) = self.conn.execute(
            "SELECT COUNT(*) FROM fills WHERE symbol=? AND replaced_by IS NULL", (symbol,)
        ).fetchone()
        return int(n)

    # ------------------------------------------------------------------ accept the broker's position

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
        """Set the ledger's position in `symbol` to the broker's, the difference booked at `price` (cash, average
        cost, realized P&L), with an audit row saying who, when, why and both numbers; the symbol's mismatch ends."""
        pos = self.positions.get(symbol, PositionRecord(symbol))
        diff = broker - pos.quantity
        qty, avg, realized = book_fill(pos.quantity, pos.avg_cost, diff, price) if diff else (pos.quantity,
                                                                                             pos.avg_cost,
                                                                                             Decimal(0))  # fmt: skip
        new_pos = PositionRecord(symbol, qty, avg, pos.realized + realized)
        cash = -diff * price
        now = time.time_ns()
        with self._tx():
            self._ensure_day(trading_day)
            cur = self.conn.execute(
                "INSERT INTO adjustments (symbol, ledger_before, broker, price, cash_adjustment, method, operator, "
                "reason, at_ns, trading_day) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (symbol, str(pos.quantity), str(broker), str(price), str(cash), method, operator, reason, now,
                 trading_day),
            )  # fmt: skip
            self._write_position(new_pos)
            self._add_cash(cash)
            self._add_day(trading_day, realized, Decimal(0))
            self.conn.execute("DELETE FROM mismatches WHERE symbol=?", (symbol,))
        self.positions[symbol] = new_pos
        self.sync()
        return {
            "symbol": symbol,
            "ledger_before": str(pos.quantity),
            "broker": str(broker),
            "price": str(price),
            "cash_adjustment": str(cash),
            "method": method,
            "audit_id": int(cur.lastrowid or 0),
        }

    def adjustments(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM adjustments ORDER BY id")]
