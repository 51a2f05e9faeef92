"""The ledger: exact money as text, fills booked once, halt persisted, migrations, corrupt files refused untouched."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from procs.executor.ledger import FillIn, Ledger, LedgerError, book_fill, open_ledger
from procs.executor.migrations import SCHEMA_VERSION, migrate
from procs.executor.orders import OrderRecord

D = Decimal
DAY = "2026-11-20"


def new_order(
    ledger: Ledger, coid: str = "ex-1", side: str = "BUY", qty: int = 100, symbol: str = "AAPL"
) -> None:
    ledger.insert_order(
        OrderRecord(coid, symbol, side, D(qty), "LMT", D("100.25"), created_ns=1, updated_ns=1)  # type: ignore[arg-type]
    )


def fill(
    exec_id: str, qty: str, price: str, coid: str = "ex-1", side: str = "BUY", commission: str | None = None
) -> FillIn:
    fee = None if commission is None else D(commission)
    return FillIn(exec_id, coid, "AAPL", side, D(qty), D(price), fee, 1)  # type: ignore[arg-type]


def test_money_is_stored_as_text_and_sums_exactly(ledger: Ledger) -> None:
    new_order(ledger, qty=30)
    for i in range(3):
        ledger.apply_fill(fill(f"e{i}", "10", "0.1"), DAY)
    ledger.set_commission("e0", D("0.35"), DAY)
    assert ledger.cash() == D("-3.35")  # 3 x 10 x 0.1 + 0.35, no binary float anywhere
    types = ledger.conn.execute("SELECT DISTINCT typeof(price), typeof(quantity) FROM fills").fetchall()
    assert [tuple(r) for r in types] == [("text", "text")]
    (cash_type,) = ledger.conn.execute("SELECT typeof(cash) FROM account").fetchone()
    assert cash_type == "text"


def test_commits_reach_the_os_at_once_and_orders_and_halts_are_synced_to_disk(ledger: Ledger) -> None:
    (level,) = ledger.conn.execute("PRAGMA synchronous").fetchone()
    assert level == 1  # NORMAL: a commit is written (SIGKILL-safe) before it returns, not fsynced
    assert not ledger.unsynced and ledger.syncs == 0
    new_order(ledger)
    assert ledger.unsynced  # the executor syncs it right behind the send (ExecutorApp.execute)
    ledger.unsynced = False
    ledger.sync()
    assert ledger.syncs == 1
    order = ledger.order("ex-1")
    assert order is not None
    ledger.save_order(order)  # an order's later states need no sync: the broker can tell them again
    assert not ledger.unsynced and ledger.syncs == 1
    ledger.set_halt("test", "operator")  # a halt is synced before it returns
    assert ledger.syncs == 2
    ledger.clear_halt()
    assert ledger.syncs == 3


def test_a_fill_is_booked_once_by_exec_id(ledger: Ledger) -> None:
    new_order(ledger)
    assert ledger.apply_fill(fill("e1", "40", "100.20"), DAY) is not None
    assert ledger.apply_fill(fill("e1", "40", "100.20"), DAY) is None
    order = ledger.order("ex-1")
    assert order is not None and order.filled == D(40) and order.status == "PARTIALLY_FILLED"
    assert ledger.positions["AAPL"].quantity == D(40)
    assert ledger.cash() == D("-4008.00")


def test_partial_fills_add_up_to_the_order(ledger: Ledger) -> None:
    new_order(ledger)
    for i, (q, p) in enumerate([("25", "100.10"), ("25", "100.20"), ("50", "100.25")]):
        ledger.apply_fill(fill(f"e{i}", q, p), DAY)
    order = ledger.order("ex-1")
    assert order is not None and order.status == "FILLED" and order.filled == D(100)
    assert order.avg_fill_price == D("100.2")
    assert "ex-1" not in ledger.working  # settled


def test_a_commission_reported_later_is_booked_once(ledger: Ledger) -> None:
    new_order(ledger)
    ledger.apply_fill(fill("e1", "100", "100"), DAY)
    assert ledger.set_commission("e1", D("1.00"), DAY)
    assert not ledger.set_commission("e1", D("1.00"), DAY)
    assert not ledger.set_commission("nope", D("1.00"), DAY)
    assert ledger.cash() == D("-10001.00")
    day = ledger.day(DAY)
    assert day is not None and day.commissions == D("1.00")


def test_positions_realize_pnl_by_average_cost(ledger: Ledger) -> None:
    new_order(ledger, "ex-b", "BUY", 100)
    new_order(ledger, "ex-s", "SELL", 150)
    ledger.apply_fill(fill("b1", "100", "100", "ex-b"), DAY)
    ledger.apply_fill(fill("s1", "150", "101", "ex-s", side="SELL"), DAY)
    pos = ledger.positions["AAPL"]
    assert (pos.quantity, pos.avg_cost, pos.realized) == (D(-50), D(101), D(100))
    day = ledger.day(DAY)
    assert day is not None and day.realized == D(100)


def test_book_fill_cases() -> None:
    assert book_fill(D(0), D(0), D(10), D(5)) == (D(10), D(5), D(0))
    assert book_fill(D(10), D(5), D(10), D(6)) == (D(20), D("5.5"), D(0))
    assert book_fill(D(10), D(5), D(-10), D(7)) == (D(0), D(0), D(20))
    assert book_fill(D(-10), D(5), D(4), D(7)) == (D(-6), D(5), D(-8))


def test_everything_survives_a_reopen(short_tmp: Path) -> None:
    path = short_tmp / "ledger.sqlite"
    led = open_ledger(path)
    new_order(led)
    led.apply_fill(fill("e1", "40", "100.20"), DAY)
    led.set_halt("daily loss limit", "daily_loss")
    led.close()
    again = open_ledger(path)
    try:
        assert again.halt_state().halted and again.halt_state().source == "daily_loss"
        assert again.positions["AAPL"].quantity == D(40)
        assert list(again.working) == ["ex-1"]
        assert again.apply_fill(fill("e1", "40", "100.20"), DAY) is None
        assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        again.close()


def _seen_from_outside(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT client_order_id FROM orders ORDER BY client_order_id")]
    finally:
        conn.close()


def test_a_group_commits_its_writes_once_and_a_failed_write_inside_undoes_only_itself(
    ledger: Ledger,
) -> None:
    with ledger.group():
        new_order(ledger, "ex-1")
        new_order(ledger, "ex-2", symbol="MSFT")
        with pytest.raises(LedgerError):
            ledger.apply_fill(fill("e1", "10", "100.00", coid="ex-unknown"), DAY)
        with pytest.raises(sqlite3.IntegrityError):
            new_order(ledger, "ex-1")  # the same id twice: this write alone is undone
        assert _seen_from_outside(ledger.path) == []  # nothing is durable before the group commits
        assert set(ledger.working) == {"ex-1", "ex-2"}
    assert _seen_from_outside(ledger.path) == ["ex-1", "ex-2"]
    ledger.apply_fill(fill("e1", "10", "100.00"), DAY)  # and the ledger works normally afterwards
    assert ledger.positions["AAPL"].quantity == D(10)


def test_a_group_begins_its_transaction_at_its_first_write_and_one_that_writes_nothing_costs_none(
    ledger: Ledger,
) -> None:
    with ledger.group():  # a burst of quotes and targets that change nothing: no BEGIN, no COMMIT
        assert ledger.order("ex-none") is None and ledger.cash() == D(0)
        assert not ledger.conn.in_transaction
    with ledger.group():
        assert not ledger.conn.in_transaction
        new_order(ledger, "ex-1")
        assert ledger.conn.in_transaction  # begun by the write, held until the group ends
        assert _seen_from_outside(ledger.path) == []
    assert not ledger.conn.in_transaction
    assert _seen_from_outside(ledger.path) == ["ex-1"]


def test_a_group_that_fails_keeps_nothing_on_disk_or_in_memory(ledger: Ledger) -> None:
    new_order(ledger, "ex-1")
    with pytest.raises(RuntimeError), ledger.group():
        ledger.apply_fill(fill("e1", "40", "100.00"), DAY)
        new_order(ledger, "ex-2", symbol="MSFT")
        assert ledger.positions["AAPL"].quantity == D(40)
        raise RuntimeError("the group fails before it commits")
    assert _seen_from_outside(ledger.path) == ["ex-1"]
    assert "AAPL" not in ledger.positions and set(ledger.working) == {"ex-1"}
    assert not ledger.has_fill("e1")


def test_migrations_bring_an_old_ledger_up_to_date_keeping_its_data(short_tmp: Path) -> None:
    path = short_tmp / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    conn.execute(
        "INSERT INTO orders (client_order_id, symbol, side, quantity, order_type, status, filled, reported_filled, "
        "avg_fill_price, created_ns, updated_ns) VALUES ('ex-old','AAPL','BUY','5','LMT','SUBMITTED','0','0','0',1,1)"
    )
    conn.close()
    led = open_ledger(path)
    try:
        versions = [r[0] for r in led.conn.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        assert "ex-old" in led.working
        assert led.open_day(DAY).start_cash == D(0)  # the v2 tables exist
    finally:
        led.close()


def test_a_ledger_from_a_newer_executor_is_refused(short_tmp: Path) -> None:
    path = short_tmp / "new.sqlite"
    open_ledger(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(LedgerError, match="newer than this executor"):
        open_ledger(path)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_corrupt_file_stops_start_up_with_one_line_and_is_never_overwritten(short_tmp: Path) -> None:
    path = short_tmp / "ledger.sqlite"
    path.write_bytes(os.urandom(8192))
    before = _digest(path)
    with pytest.raises(LedgerError) as err:
        open_ledger(path)
    assert "corrupt" in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
    assert _digest(path) == before
    assert not (short_tmp / "ledger.sqlite-wal").exists()


def test_a_damaged_page_is_caught_by_the_integrity_check(short_tmp: Path) -> None:
    path = short_tmp / "ledger.sqlite"
    led = open_ledger(path)
    for i in range(200):
        new_order(led, f"ex-{i}")
    led.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    led.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page + 100 : 3 * page] = os.urandom(page - 100)  # scribble over a b-tree page
    path.write_bytes(bytes(data))
    before = _digest(path)
    with pytest.raises(LedgerError, match="corrupt"):
        open_ledger(path)
    assert _digest(path) == before


def test_a_foreign_sqlite_file_is_not_taken_for_a_ledger(short_tmp: Path) -> None:
    path = short_tmp / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    conn.close()
    with pytest.raises(LedgerError, match="not an executor ledger"):
        open_ledger(path)


def test_the_executor_process_refuses_a_corrupt_ledger_with_one_line_and_exit_78(short_tmp: Path) -> None:
    import subprocess

    repo = Path(__file__).resolve().parents[3]
    path = short_tmp / "var" / "data" / "ledger.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(8192))
    before = _digest(path)
    env = {"STACK_HOME": str(short_tmp), "VAR_DIR": str(short_tmp / "var"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(repo / ".venv" / "bin" / "python"), "-m", "procs.executor"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78  # a configuration-class error: supervisord does not restart-loop it
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "corrupt" in lines[0] and "untouched" in lines[0]
    assert _digest(path) == before
