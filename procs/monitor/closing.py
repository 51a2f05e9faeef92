"""The end of the trading day, as the monitor sees it: the intraday equity curve and its journal (P&L against
the broker's account values), and the daily report once the regular session has closed -- built in its own
process (`python -m procs.monitor.report DAY`: matplotlib never enters the monitor), its summary line sent
through the alert sinks. It never asks anything of the stack, and never writes to the ledger.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from typing import Any

from loguru import logger

from procs.monitor import daybook
from procs.monitor import notices as nt
from procs.monitor.alerting import Alerting
from procs.monitor.board import Board
from procs.monitor.view import StackView
from shared.config import Settings
from shared.log import log_every

EQUITY_EVERY = 10.0  # seconds between two equity-journal lines (the dashboard's curve takes every poll)
REPORT_TIMEOUT = 120.0


class DayClose:
    def __init__(self, settings: Settings, alerting: Alerting) -> None:
        self.settings = settings
        self.alerting = alerting
        self.equity_written = 0.0
        self.last_session = ""
        self.reports: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def on_status(self, st: dict[str, Any], view: StackView, board: Board) -> None:
        """The equity curve and journal; the daily report once the regular session has closed."""
        day = str(st.get("trading_day") or "")
        pnl = _num(st.get("daily_pnl"))
        if not day or pnl is None:
            return
        at_ns = _market_ns(str(st.get("market_time") or "")) or time.time_ns()
        acct = view.account
        board.equity.add(day, at_ns, pnl, acct.get("NetLiquidation"))
        now = time.monotonic()
        if now - self.equity_written >= EQUITY_EVERY:
            self.equity_written = now
            sample = {
                "ts_ns": time.time_ns(),
                "market_ns": at_ns,
                "pnl": st.get("daily_pnl"),
                "realized": st.get("realized_today"),
                "unrealized": st.get("unrealized"),
                "commissions": st.get("commissions_today"),
                "broker": {k: acct[k] for k in sorted(acct)},
                "positions": {f"{sym}/{book}": str(q) for (sym, book), q in sorted(view.positions.items())},
            }
            try:
                daybook.append_equity(self.settings.data_dir, day, sample)
            except OSError as exc:
                log_every("monitor.equity", 600.0, "ERROR", f"cannot write the equity journal: {exc}")
        session = str(st.get("market_session") or "")
        if self.last_session == "regular" and session != "regular" and day not in self.reports:
            self.reports.add(day)
            task = asyncio.get_running_loop().create_task(self.daily_report(day))
            self.tasks.add(task)  # held: a task nobody references may be collected mid-run
            task.add_done_callback(self.tasks.discard)
        self.last_session = session

    async def daily_report(self, day: str) -> None:
        """var/reports/DAY.html built in its own process (matplotlib stays out of the monitor); its summary
        line goes through the alert sinks."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "procs.monitor.report", day,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), REPORT_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            logger.error("daily report for {} took over {:g}s: stopped", day, REPORT_TIMEOUT)
            return
        if proc.returncode != 0:
            logger.error("daily report for {} failed: {}", day, err.decode(errors="replace")[-500:])
            return
        lines = out.decode(errors="replace").strip().splitlines()
        summary = lines[-1] if lines else f"daily report {day}"
        logger.info("daily report: {}", summary)
        self.alerting.send_always(
            nt.Notice("report", day, day, "INFO", f"Daily report {day}", summary, sticky=False)
        )


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _market_ns(text: str) -> int:
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1e9)
    except ValueError:
        return 0
