"""The ledger's write path: an order written before it is sent, its changes, and each fill, IB correction and late
commission booked into the order, the position, cash and the day's P&L in one transaction.

A fill is booked exactly once (by exec_id), so a replay changes nothing; memory changes only after the commit. Nothing
here ever deletes a fill or an order: a correction marks the execution it replaces.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from decimal import Decimal

from procs.executor import ledger_days as days
from procs.executor.ledger_queries import has_fill, order
from procs.executor.ledger_store import LedgerStore
from procs.executor.migrations import LedgerError
from procs.executor.orders import ADOPTED, OrderRecord, apply_fill_quantity
from procs.executor.records import (
    AVG_PLACES,
    ORDER_INSERT,
    ORDER_MUTABLE,
    ORDER_UPDATE,
    FillIn,
    PositionRecord,
    book_fill,
    correction_base,
    correction_rank,
    dec_or_none,
    order_row,
)

# ------------------------------------------------------------------ orders


def insert_order(store: LedgerStore, new: OrderRecord) -> None:
    """Write a new order and commit: this happens before the order is sent anywhere."""
    with store.tx():
        store.conn.execute(ORDER_INSERT, tuple(order_row(new).values()))
    store.unsynced = True
    store.track(new)


def save_order(store: LedgerStore, changed: OrderRecord) -> None:
    with store.tx():
        update_order(store, changed)
    store.track(changed)


def update_order(store: LedgerStore, o: OrderRecord) -> None:
    """Inside the caller's transaction: the order's mutable columns as they are now."""
    row = order_row(o)
    store.conn.execute(ORDER_UPDATE, (*(row[c] for c in ORDER_MUTABLE), o.client_order_id))


def write_position(store: LedgerStore, p: PositionRecord) -> None:
    """Inside the caller's transaction: a symbol's position row as it is now."""
    store.conn.execute(
        "INSERT INTO positions (symbol, quantity, avg_cost, realized) VALUES (?,?,?,?) "
        "ON CONFLICT(symbol) DO UPDATE SET quantity=excluded.quantity, avg_cost=excluded.avg_cost, "
        "realized=excluded.realized",
        (p.symbol, str(p.quantity), str(p.avg_cost), str(p.realized)),
    )


# ------------------------------------------------------------------ fills


def apply_fill(
    store: LedgerStore, fill: FillIn, trading_day: str, now_ns: int | None = None
) -> OrderRecord | None:
    """Book a fill exactly once (by exec_id): order totals, position, cash and the day's P&L in one
    transaction. IB's correction of an execution (same execId up to its last '.', a higher suffix) replaces the
    execution it corrects; an older version seen after its correction changes nothing. Returns the updated
    order, or None when nothing was booked."""
    current = order(store, fill.client_order_id)
    if current is None:
        raise LedgerError(f"fill {fill.exec_id} is for unknown order {fill.client_order_id}")
    if has_fill(store, fill.exec_id):
        return None
    sibling = _booked_version(store, fill.exec_id)
    if sibling is not None:
        if correction_rank(sibling["exec_id"]) > correction_rank(fill.exec_id):
            return None  # a replay of what a later correction already replaced
        return _correct(store, sibling, fill, trading_day, now_ns)
    updated = dataclasses.replace(current)  # a copy: memory changes only after the commit
    pos = store.positions.get(fill.symbol, PositionRecord(fill.symbol))
    signed = fill.quantity if fill.side == "BUY" else -fill.quantity
    qty, avg, realized = book_fill(pos.quantity, pos.avg_cost, signed, fill.price)
    new_pos = PositionRecord(fill.symbol, qty, avg, pos.realized + realized)
    commission = fill.commission or Decimal(0)
    with store.tx():
        days.ensure_day(store, trading_day)
        if not _insert_fill(store, fill, trading_day, time.time_ns()):
            return None  # already booked: the transaction commits nothing
        if updated.why.startswith(ADOPTED):  # learnt from its fills: its size is what has filled
            updated.quantity = max(updated.quantity, updated.filled + fill.quantity)
        apply_fill_quantity(updated, fill.quantity, fill.price)
        updated.updated_ns = time.time_ns() if now_ns is None else now_ns
        update_order(store, updated)
        write_position(store, new_pos)
        days.add_cash(store, -signed * fill.price - commission)
        days.add_day(store, trading_day, realized, commission)
        days.carry_forward(store, trading_day, fill.symbol, -signed * fill.price - commission, signed)
        store.raise_meta_int("last_exec_ns", fill.exec_ns)
    store.positions[fill.symbol] = new_pos
    store.track(updated)
    return updated


def set_commission(store: LedgerStore, exec_id: str, commission: Decimal, trading_day: str = "") -> bool:
    """Book a commission reported after its fill, once, on the trading day its fill is booked on (`trading_day`
    only for a fill row that has none). False when the fill is unknown, replaced by a correction, or its
    commission is already booked. Until then the fill's commission is unknown (NULL), never 0."""
    with store.tx():
        row = store.conn.execute(
            "SELECT trading_day, symbol FROM fills WHERE exec_id=? AND commission IS NULL AND replaced_by IS NULL",
            (exec_id,),
        ).fetchone()
        if row is None:
            return False
        day = row["trading_day"] or trading_day
        store.conn.execute("UPDATE fills SET commission=? WHERE exec_id=?", (str(commission), exec_id))
        days.ensure_day(store, day)
        days.add_cash(store, -commission)
        days.add_day(store, day, Decimal(0), commission)
        days.carry_forward(store, day, row["symbol"], -commission, Decimal(0))
    return True


def _insert_fill(store: LedgerStore, fill: FillIn, trading_day: str, applied_ns: int) -> bool:
    cur = store.conn.execute(
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


# ------------------------------------------------------------------ IB's corrections


def _booked_version(store: LedgerStore, exec_id: str) -> sqlite3.Row | None:
    """The booked, not yet replaced execution that `exec_id` is another version of (IB's corrections)."""
    base = correction_base(exec_id)
    if base is None:
        return None
    rows = store.conn.execute(
        "SELECT * FROM fills WHERE substr(exec_id, 1, ?) = ? AND replaced_by IS NULL",
        (len(base) + 1, base + "."),
    )
    return next((r for r in rows if correction_base(r["exec_id"]) == base), None)


def _correct(
    store: LedgerStore, old: sqlite3.Row, fill: FillIn, trading_day: str, now_ns: int | None
) -> OrderRecord | None:
    """Replace a booked execution by its correction: the order's totals, the position (replayed in booking
    order), cash and the day's P&L and commissions all become what they would be had the correction come first."""
    current = order(store, old["client_order_id"])
    assert current is not None
    old_qty, old_price = Decimal(old["quantity"]), Decimal(old["price"])
    old_comm = dec_or_none(old["commission"]) or Decimal(0)
    old_signed = old_qty if old["side"] == "BUY" else -old_qty
    signed = fill.quantity if fill.side == "BUY" else -fill.quantity
    commission = fill.commission or Decimal(0)
    before = store.positions.get(fill.symbol, PositionRecord(fill.symbol))
    updated = dataclasses.replace(current)
    with store.tx():
        days.ensure_day(store, trading_day)
        store.conn.execute("UPDATE fills SET replaced_by=? WHERE exec_id=?", (fill.exec_id, old["exec_id"]))
        _insert_fill(store, dataclasses.replace(fill, client_order_id=current.client_order_id), trading_day,
                     old["applied_ns"])  # fmt: skip
        new_pos = _replay_position(store, fill.symbol)
        rows = store.conn.execute(
            "SELECT quantity, price FROM fills WHERE client_order_id=? AND replaced_by IS NULL",
            (current.client_order_id,),
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
        update_order(store, updated)
        write_position(store, new_pos)
        cash = old_signed * old_price + old_comm - signed * fill.price - commission
        days.add_cash(store, cash)
        days.add_day(store, trading_day, new_pos.realized - before.realized, commission - old_comm)
        days.carry_forward(store, trading_day, fill.symbol, cash, signed - old_signed)
    store.positions[fill.symbol] = new_pos
    store.track(updated)
    return updated


def _replay_position(store: LedgerStore, symbol: str) -> PositionRecord:
    """A symbol's position from every booked execution and operator adjustment, in the order they were booked."""
    events = [
        (r["applied_ns"], Decimal(r["quantity"]) * (1 if r["side"] == "BUY" else -1), Decimal(r["price"]))
        for r in store.conn.execute(
            "SELECT applied_ns, side, quantity, price FROM fills WHERE symbol=? AND replaced_by IS NULL",
            (symbol,),
        )
    ]
    events += [
        (r["at_ns"], Decimal(r["broker"]) - Decimal(r["ledger_before"]), Decimal(r["price"]))
        for r in store.conn.execute(
            "SELECT at_ns, broker, ledger_before, price FROM adjustments WHERE symbol=?", (symbol,)
        )  # fmt: skip
    ]
    pos = PositionRecord(symbol)
    for _, signed, price in sorted(events, key=lambda e: e[0]):
        if signed:
            qty, avg, realized = book_fill(pos.quantity, pos.avg_cost, signed, price)
            pos = PositionRecord(symbol, qty, avg, pos.realized + realized)
    return pos
