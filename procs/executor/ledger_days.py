"""The ledger's cash and its trading days: each day's starting cash and positions (with the price its P&L is
measured from), realized P&L and commissions, and a late booking carried into the days opened after it.

A day's start is written once, when the day is first opened or booked on; it changes afterwards only by carrying a
late booking forward, never by a later day's own activity. The `add_`/`ensure_`/`carry_` writes run inside their
caller's transaction and never begin or commit one themselves.
"""

from __future__ import annotations

import time
from decimal import Decimal

from procs.executor.ledger_store import LedgerStore
from procs.executor.records import DayRecord, dec_or_none


def cash(store: LedgerStore) -> Decimal:
    (amount,) = store.conn.execute("SELECT cash FROM account WHERE id=1").fetchone()
    return Decimal(amount)


def add_cash(store: LedgerStore, amount: Decimal) -> None:
    (before,) = store.conn.execute("SELECT cash FROM account WHERE id=1").fetchone()
    store.conn.execute("UPDATE account SET cash=? WHERE id=1", (str(Decimal(before) + amount),))


def open_day(store: LedgerStore, trading_day: str, marks: dict[str, Decimal] | None = None) -> DayRecord:
    """The day's record, created (with the cash and positions it starts from) the first time it is asked for."""
    if day(store, trading_day) is None:
        with store.tx():
            ensure_day(store, trading_day, marks or {})
    record = day(store, trading_day)
    assert record is not None
    return record


def ensure_day(store: LedgerStore, trading_day: str, marks: dict[str, Decimal] | None = None) -> None:
    """The day's row and its starting positions, if it has none yet (the cash and positions as they are now)."""
    (start_cash,) = store.conn.execute("SELECT cash FROM account WHERE id=1").fetchone()
    cur = store.conn.execute(
        "INSERT OR IGNORE INTO days (trading_day, start_cash, realized, commissions, opened_ns) VALUES (?,?,?,?,?)",
        (trading_day, start_cash, "0", "0", time.time_ns()),
    )
    if cur.rowcount != 1:
        return
    for pos in store.positions.values():
        if pos.quantity != 0:
            ref = (marks or {}).get(pos.symbol)
            store.conn.execute(
                "INSERT OR IGNORE INTO day_marks (trading_day, symbol, start_quantity, ref_price) VALUES (?,?,?,?)",
                (trading_day, pos.symbol, str(pos.quantity), None if ref is None else str(ref)),
            )


def day(store: LedgerStore, trading_day: str) -> DayRecord | None:
    row = store.conn.execute("SELECT * FROM days WHERE trading_day=?", (trading_day,)).fetchone()
    if row is None:
        return None
    start = {
        r["symbol"]: (Decimal(r["start_quantity"]), dec_or_none(r["ref_price"]))
        for r in store.conn.execute("SELECT * FROM day_marks WHERE trading_day=?", (trading_day,))
    }
    return DayRecord(
        trading_day,
        Decimal(row["start_cash"]),
        Decimal(row["realized"]),
        Decimal(row["commissions"]),
        start,
    )


def set_day_reference(store: LedgerStore, trading_day: str, symbol: str, price: Decimal) -> None:
    """The first price seen today for a position carried into the day (its P&L is measured from it)."""
    with store.tx():
        store.conn.execute(
            "UPDATE day_marks SET ref_price=? WHERE trading_day=? AND symbol=? AND ref_price IS NULL",
            (str(price), trading_day, symbol),
        )


def add_day(store: LedgerStore, trading_day: str, realized: Decimal, commission: Decimal) -> None:
    row = store.conn.execute(
        "SELECT realized, commissions FROM days WHERE trading_day=?", (trading_day,)
    ).fetchone()
    store.conn.execute(
        "UPDATE days SET realized=?, commissions=? WHERE trading_day=?",
        (str(Decimal(row[0]) + realized), str(Decimal(row[1]) + commission), trading_day),
    )


def carry_forward(
    store: LedgerStore, trading_day: str, symbol: str, cash: Decimal, quantity: Decimal
) -> None:
    """A booking on a trading day before days already opened (a fill executed before midnight and booked after,
    or its late commission): each later day starts from it as if it had been booked on time, so that day's P&L
    does not count it. A position it brings into a later day gets that day's first price as its reference."""
    conn = store.conn
    later = [r[0] for r in conn.execute("SELECT trading_day FROM days WHERE trading_day > ?", (trading_day,))]
    for later_day in later:
        (start,) = conn.execute("SELECT start_cash FROM days WHERE trading_day=?", (later_day,)).fetchone()
        conn.execute(
            "UPDATE days SET start_cash=? WHERE trading_day=?", (str(Decimal(start) + cash), later_day)
        )
        if not quantity:
            continue
        row = conn.execute(
            "SELECT start_quantity FROM day_marks WHERE trading_day=? AND symbol=?", (later_day, symbol)
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO day_marks (trading_day, symbol, start_quantity, ref_price) VALUES (?,?,?,NULL)",
                (later_day, symbol, str(quantity)),
            )
        else:
            conn.execute(
                "UPDATE day_marks SET start_quantity=? WHERE trading_day=? AND symbol=?",
                (str(Decimal(row[0]) + quantity), later_day, symbol),
            )
