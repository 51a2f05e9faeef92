"""The daily report from a real ledger (the executor's own Ledger class, a real SQLite file) with known
trades: slippage against the quote at decision and P&L to the cent; a day without trading says so; a bad
date is a usage error (exit 2), never a traceback; `bin/trader report` writes var/reports/DATE.html and a PNG.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from procs.executor.ledger import open_ledger
from procs.executor.orders import OrderRecord
from procs.executor.records import FillIn
from procs.monitor import daybook
from procs.monitor.alerting import Alerting
from procs.monitor.board import Board
from procs.monitor.closing import DayClose
from procs.monitor.policy import AlertPolicy
from procs.monitor.report import write_report
from procs.monitor.view import StackView
from shared.config import load_settings
from tests.support.stack import REPO

DAY = "2026-03-02"
T0 = 1_772_460_000_000_000_000  # 2026-03-02 14:00 UTC


def _order(cid: str, symbol: str, side: str, qty: str, quote: str, decided: int) -> OrderRecord:
    return OrderRecord(
        client_order_id=cid,
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        quantity=Decimal(qty),
        order_type="LMT",
        limit_price=Decimal(quote),
        created_ns=decided + 1000,
        updated_ns=decided + 1000,
        decided_on_ns=decided,
        why="trend up" if side == "BUY" else "trend down",
        decision_quote=Decimal(quote),
    )


@pytest.fixture
def known_day(stack_env: Path) -> Path:
    """Buy 100 AAPL (quote 150.00) filled 60 @ 150.02 and 40 @ 150.05, sell it all (quote 151.00) @ 150.97."""
    settings = load_settings()
    settings.data_dir.mkdir(parents=True)
    ledger = open_ledger(daybook.ledger_path(settings.data_dir))
    try:
        ledger.insert_order(_order("AAPL-1", "AAPL", "BUY", "100", "150.00", T0))
        ledger.apply_fill(FillIn("x1", "AAPL-1", "AAPL", "BUY", Decimal(60), Decimal("150.02"), Decimal("0.30"),
                                 T0 + 2 * 10**9), DAY)  # fmt: skip
        ledger.apply_fill(FillIn("x2", "AAPL-1", "AAPL", "BUY", Decimal(40), Decimal("150.05"), Decimal("0.20"),
                                 T0 + 3 * 10**9), DAY)  # fmt: skip
        ledger.insert_order(_order("AAPL-2", "AAPL", "SELL", "100", "151.00", T0 + 3600 * 10**9))
        ledger.apply_fill(FillIn("x3", "AAPL-2", "AAPL", "SELL", Decimal(100), Decimal("150.97"), Decimal("0.50"),
                                 T0 + 3601 * 10**9), DAY)  # fmt: skip
    finally:
        ledger.close()
    daybook.append_equity(settings.data_dir, DAY, {"ts_ns": T0, "market_ns": T0, "pnl": "0.00",
                                                   "broker": {"NetLiquidation": 1000000.0}})  # fmt: skip
    daybook.append_equity(settings.data_dir, DAY, {"ts_ns": T0 + 4000 * 10**9, "market_ns": T0 + 4000 * 10**9,
                                                   "pnl": "92.00", "broker": {"NetLiquidation": 1000092.0},
                                                   "positions": {"AAPL/broker": "0"}})  # fmt: skip
    return stack_env


def _cells(page: str) -> list[list[str]]:
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", page)]


def test_known_trades_show_their_slippage_and_pnl_to_the_cent(known_day: Path) -> None:
    page_path, line = write_report(load_settings(), DAY)
    page = page_path.read_text()
    rows = {r[1] + r[2]: r for r in _cells(page) if len(r) == 10}
    buy, sell = rows["AAPLBUY"], rows["AAPLSELL"]
    # buy: avg fill (60*150.02 + 40*150.05)/100 = 150.032, quote 150.00: 0.032/share cost, 3.20 on 100 shares
    assert buy[0] == "14:00:00" and buy[4] == "150.00" and buy[5] == "150.0320"
    assert buy[6] == "0.0320" and buy[7] == "3.20" and buy[8] == "0.50"
    # sell at 150.97 against a quote of 151.00: 0.03/share given up, 3.00
    assert sell[4] == "151.00" and sell[5] == "150.9700" and sell[6] == "0.0300" and sell[7] == "3.00"
    # realized (150.97 - 150.032) * 100 = 93.80; fees 1.00; net 92.80
    figures = {r[0]: r[1:] for r in _cells(page) if len(r) == 3}
    assert figures["realized"][0] == "93.80"
    assert figures["fees"][0] == "1.00"
    assert figures["net realized"][0] == "92.80"
    assert figures["NetLiquidation change"][1] == "92.00"
    assert "realized 93.80, fees 1.00, net 92.80, slippage 6.20" in line
    assert (page_path.parent / f"{DAY}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '<img src="2026-03-02.png"' in page


def test_a_day_without_trading_says_so(known_day: Path) -> None:
    page_path, line = write_report(load_settings(), "2026-03-03")
    assert "No trading on 2026-03-03" in page_path.read_text()
    assert line == "2026-03-03: no trading"


def _trader(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STACK_HOME": str(home), "VAR_DIR": str(home / "var")}
    return subprocess.run(
        [sys.executable, str(REPO / "bin" / "trader"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bin_trader_report_writes_the_page_and_refuses_a_bad_date(known_day: Path) -> None:
    done = _trader(known_day, "report", DAY)
    assert done.returncode == 0, done.stderr
    assert (known_day / "var" / "reports" / f"{DAY}.html").exists()
    assert "net 92.80" in done.stdout
    for bad in ("2026-13-45", "yesterday", "../../etc/passwd"):
        done = _trader(known_day, "report", bad)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "not a date" in done.stderr or "does not match" in done.stderr


async def test_the_close_of_the_regular_session_builds_the_report_and_sends_its_summary(
    known_day: Path,
) -> None:
    settings = load_settings()
    alerting = Alerting(AlertPolicy(), settings.log_dir / "alerts.jsonl", [])
    close = DayClose(settings, alerting)
    view, board = StackView(), Board()
    for session in ("regular", "regular", "post", "post"):  # the report once, at the change
        close.on_status({"trading_day": DAY, "daily_pnl": "92.00", "market_session": session}, view, board)
    assert len(close.tasks) == 1
    await asyncio.wait_for(asyncio.gather(*close.tasks), 60)
    assert (settings.var_path / "reports" / f"{DAY}.html").exists()
    sent = [r for r in alerting.recent(10) if r["title"] == f"Daily report {DAY}"]
    assert sent and "net 92.80" in sent[0]["text"]
    assert [p[1] for p in board.equity.points] == [92.0]  # the curve: one point while it stays flat
