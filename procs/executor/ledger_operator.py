"""The ledger's operator records: the halt, position mismatches that block a symbol, the operator's flatten
intents, the audited adjustments that set a symbol to the broker's position, and which account and mode the
ledger belongs to.

None of it is on the order path. Every change is one transaction, and a halt, a flatten or an adjustment reaches
the disk (sync) before it returns; nothing here ever deletes a fill or an order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from procs.executor import ledger_days as days
from procs.executor.ledger_fills import write_position
from procs.executor.ledger_queries import fill_count
from procs.executor.ledger_store import LedgerStore
from procs.executor.migrations import LedgerError
from procs.executor.records import HaltState, PositionRecord, book_fill

IDENTITY_KEYS = ("account", "trading_mode", "execution")


@dataclass(frozen=True, slots=True)
class FlattenIntent:
    symbol: str
    since_ns: int
    fills_before: int  # the symbol's booked fills when the intent began: the fills it took are the rest


# ------------------------------------------------------------------ halt


def halt_state(store: LedgerStore) -> HaltState:
    row = store.conn.execute("SELECT halted, reason, since_ns, source FROM halt WHERE id=1").fetchone()
    return HaltState(bool(row[0]), row[1], row[2], row[3])


def set_halt(store: LedgerStore, reason: str, source: str) -> HaltState:
    with store.tx():
        store.conn.execute(
            "UPDATE halt SET halted=1, reason=?, since_ns=?, source=? WHERE id=1",
            (reason, time.time_ns(), source),
        )
    store.sync()
    return halt_state(store)


def clear_halt(store: LedgerStore) -> HaltState:
    with store.tx():
        store.conn.execute(
            "UPDATE halt SET halted=0, reason='', since_ns=?, source='' WHERE id=1", (time.time_ns(),)
        )
    store.sync()
    return halt_state(store)


# ------------------------------------------------------------------ identity


def claim_identity(store: LedgerStore, identity: dict[str, str], shown: dict[str, str]) -> None:
    """Bind a new ledger to its account, trading mode and execution mode; LedgerError (one line naming both)
    when the ledger was written for others. `shown` is the same identity as it may be printed (masked)."""
    stored = {k: store.meta(f"identity_{k}") for k in IDENTITY_KEYS}
    if not any(stored.values()):
        for k in IDENTITY_KEYS:
            store.set_meta(f"identity_{k}", identity[k])
            store.set_meta(f"identity_{k}_shown", shown[k])
        return
    if stored != {k: identity[k] for k in IDENTITY_KEYS}:
        was = " ".join(store.meta(f"identity_{k}_shown") or stored[k] for k in IDENTITY_KEYS)
        now = " ".join(shown[k] for k in IDENTITY_KEYS)
        raise LedgerError(
            f"the ledger belongs to {was} but the settings say {now}: point VAR_DIR at that account's "
            "ledger, or move this one aside to start a new one"
        )


# ------------------------------------------------------------------ mismatches


def mismatches(store: LedgerStore) -> dict[str, tuple[Decimal, Decimal]]:
    """Symbols blocked by a confirmed position mismatch: symbol -> (ledger, broker) when it was confirmed."""
    return {
        r[0]: (Decimal(r[1]), Decimal(r[2]))
        for r in store.conn.execute("SELECT symbol, ledger, broker FROM mismatches")
    }


def set_mismatch(store: LedgerStore, symbol: str, ledger: Decimal, broker: Decimal) -> None:
    with store.tx():
        store.conn.execute(
            "INSERT INTO mismatches (symbol, ledger, broker, since_ns) VALUES (?,?,?,?) "
            "ON CONFLICT(symbol) DO UPDATE SET ledger=excluded.ledger, broker=excluded.broker",
            (symbol, str(ledger), str(broker), time.time_ns()),
        )


def clear_mismatch(store: LedgerStore, symbol: str) -> None:
    with store.tx():
        store.conn.execute("DELETE FROM mismatches WHERE symbol=?", (symbol,))


# ------------------------------------------------------------------ flatten


def flattening(store: LedgerStore) -> dict[str, FlattenIntent]:
    return {
        r[0]: FlattenIntent(r[0], r[1], r[2])
        for r in store.conn.execute("SELECT symbol, since_ns, fills_before FROM flatten")
    }


def set_flatten(store: LedgerStore, symbols: list[str]) -> None:
    with store.tx():
        for symbol in symbols:
            store.conn.execute(
                "INSERT OR IGNORE INTO flatten (symbol, since_ns, fills_before) VALUES (?,?,?)",
                (symbol, time.time_ns(), fill_count(store, symbol)),
            )
    store.sync()


def clear_flatten(store: LedgerStore) -> None:
    with store.tx():
        store.conn.execute("DELETE FROM flatten")
    store.sync()


# ------------------------------------------------------------------ accept the broker's position


def accept_broker(
    store: LedgerStore,
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
    pos = store.positions.get(symbol, PositionRecord(symbol))
    diff = broker - pos.quantity
    qty, avg, realized = (
        book_fill(pos.quantity, pos.avg_cost, diff, price)
        if diff
        else (pos.quantity, pos.avg_cost, Decimal(0))
    )
    new_pos = PositionRecord(symbol, qty, avg, pos.realized + realized)
    cash = -diff * price
    now = time.time_ns()
    with store.tx():
        days.ensure_day(store, trading_day)
        cur = store.conn.execute(
            "INSERT INTO adjustments (symbol, ledger_before, broker, price, cash_adjustment, method, operator, "
            "reason, at_ns, trading_day) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (symbol, str(pos.quantity), str(broker), str(price), str(cash), method, operator, reason, now,
             trading_day),
        )  # fmt: skip
        write_position(store, new_pos)
        days.add_cash(store, cash)
        days.add_day(store, trading_day, realized, Decimal(0))
        store.conn.execute("DELETE FROM mismatches WHERE symbol=?", (symbol,))
    store.positions[symbol] = new_pos
    store.sync()
    return {
        "symbol": symbol,
        "ledger_before": str(pos.quantity),
        "broker": str(broker),
        "price": str(price),
        "cash_adjustment": str(cash),
        "method": method,
        "audit_id": int(cur.lastrowid or 0),
    }


def adjustments(store: LedgerStore) -> list[dict[str, Any]]:
    return [dict(r) for r in store.conn.execute("SELECT * FROM adjustments ORDER BY id")]
