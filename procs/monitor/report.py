"""The daily report: var/reports/DAY.html with a PNG equity curve, from the ledger (read-only), the monitor's
equity journal and its alerts journal. Run by the monitor after the close, and by `bin/trader report [DAY]`
(python -m procs.monitor.report [DAY]); the last line printed is the one-line summary the sinks get.

Each trade: decision time, the quote at decision, the fill price and the slippage between them (positive =
it cost us), fees; P&L against the broker's account values; halts, reconnects and faults; ledger against
broker per symbol. Money is Decimal to the cent. It never writes to the ledger, and never asks any program.
"""

from __future__ import annotations

import html
import json
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from procs.monitor import daybook
from shared.config import ConfigError, Settings, load_settings

CENT = Decimal("0.01")
FAULT_WORDS = (
    "STALLED",
    "DISCONNECTED",
    "WAITING_FOR_HUMAN",
    "halt",
    "reconnect",
    "fault",
    "mismatch",
    "breaker",
)


@dataclass
class Trade:
    client_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    decided_ns: int
    decision_quote: Decimal | None
    fill_price: Decimal
    fees: Decimal
    why: str

    @property
    def slippage_per_share(self) -> Decimal | None:
        """Fill against the quote at decision, signed so that positive is a cost (paid up / sold down)."""
        if self.decision_quote is None:
            return None
        sign = 1 if self.side == "BUY" else -1
        return (self.fill_price - self.decision_quote) * sign

    @property
    def slippage(self) -> Decimal | None:
        per = self.slippage_per_share
        return None if per is None else (per * self.quantity).quantize(CENT)


@dataclass
class Day:
    day: str
    trades: list[Trade]
    realized: Decimal
    commissions: Decimal
    positions: list[dict[str, str]]
    equity: list[dict[str, Any]]
    events: list[dict[str, Any]]

    @property
    def net(self) -> Decimal:
        return (self.realized - self.commissions).quantize(CENT)


def _dec(text: Any) -> Decimal | None:
    try:
        return None if text in (None, "") else Decimal(str(text))
    except ArithmeticError:
        return None


def read_day(ledger: Path, day: str) -> tuple[list[Trade], Decimal, Decimal, list[dict[str, str]]]:
    """The day's trades (fills grouped by order), realized P&L, commissions, and the ledger's positions."""
    try:
        with daybook.read_only(ledger) as conn:
            has_quote = "decision_quote" in daybook.columns(conn, "orders")
            quote = "o.decision_quote" if has_quote else "NULL"
            rows = conn.execute(
                f"SELECT o.client_order_id, o.symbol, o.side, o.decided_on_ns, o.created_ns, o.why, {quote} AS q, "
                "f.quantity, f.price, f.commission FROM fills f JOIN orders o USING (client_order_id) "
                "WHERE f.trading_day=? AND f.replaced_by IS NULL ORDER BY f.exec_ns, f.exec_id",
                (day,),
            ).fetchall()
            d = conn.execute("SELECT realized, commissions FROM days WHERE trading_day=?", (day,)).fetchone()
            pos = conn.execute("SELECT symbol, quantity, avg_cost FROM positions ORDER BY symbol").fetchall()
    except (FileNotFoundError, sqlite3.Error):
        return [], Decimal(0), Decimal(0), []
    trades: dict[str, Trade] = {}
    for r in rows:
        qty, price = Decimal(r["quantity"]), Decimal(r["price"])
        fee = _dec(r["commission"]) or Decimal(0)
        t = trades.get(r["client_order_id"])
        if t is None:
            trades[r["client_order_id"]] = Trade(
                r["client_order_id"], r["symbol"], r["side"], qty, r["decided_on_ns"] or r["created_ns"],
                _dec(r["q"]), price, fee, r["why"],
            )  # fmt: skip
            continue
        total = t.quantity + qty  # the order's average fill price over its fills of the day
        t.fill_price = (t.fill_price * t.quantity + price * qty) / total
        t.quantity, t.fees = total, t.fees + fee
    realized = Decimal(d["realized"]) if d else Decimal(0)
    commissions = Decimal(d["commissions"]) if d else Decimal(0)
    positions = [{"symbol": p["symbol"], "ledger": p["quantity"]} for p in pos if Decimal(p["quantity"]) != 0]
    return list(trades.values()), realized, commissions, positions


def read_events(alerts: Path, day: str) -> list[dict[str, Any]]:
    """Halts, reconnects and faults the monitor journaled on `day` (UTC)."""
    out = []
    try:
        lines = alerts.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict) or "title" not in doc or doc.get("kind") in ("test", "report"):
            continue
        when = datetime.fromtimestamp(int(doc.get("ts_ns", 0)) / 1e9, tz=UTC)
        if when.date().isoformat() == day:
            out.append(doc)
    return out


def build(settings: Settings, day: str) -> Day:
    trades, realized, commissions, positions = read_day(daybook.ledger_path(settings.data_dir), day)
    equity = daybook.read_equity(settings.data_dir, day)
    events = read_events(settings.log_dir / "alerts.jsonl", day)
    return Day(day, trades, realized, commissions, positions, equity, events)


def summary(d: Day) -> str:
    if not d.trades:
        return f"{d.day}: no trading"
    slip = sum((t.slippage or Decimal(0) for t in d.trades), Decimal(0))
    return (
        f"{d.day}: {len(d.trades)} trade(s), realized {d.realized.quantize(CENT)}, fees {d.commissions.quantize(CENT)}, "
        f"net {d.net}, slippage {slip.quantize(CENT)}, {len(d.events)} alert(s)"
    )


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%H:%M:%S") if ns else ""


def _table(headings: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _series(samples: list[dict[str, Any]], pick: Callable[[dict[str, Any]], Any]) -> list[tuple[Any, float]]:
    """(time, value) of each sample that has both, time as a datetime (matplotlib's axis)."""
    out = []
    for s in samples:
        t, v = s.get("market_ns") or s.get("ts_ns"), _dec(pick(s))
        if isinstance(t, int) and t > 0 and v is not None:
            out.append((datetime.fromtimestamp(t / 1e9, tz=UTC), float(v)))
    return out


def equity_png(d: Day, path: Path) -> bool:
    """The day's P&L (and the broker's NetLiquidation change) against time; False when there is nothing to draw."""
    points = _series(d.equity, lambda s: s.get("pnl"))
    if len(points) < 2:
        return False
    import matplotlib  # here: the monitor itself never imports it (memory)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
    ax.plot([t for t, _ in points], [p for _, p in points], label="ledger P&L today")
    nl = _series(d.equity, lambda s: (s.get("broker") or {}).get("NetLiquidation"))
    if len(nl) >= 2:
        ax.plot([t for t, _ in nl], [v - nl[0][1] for _, v in nl], label="broker NetLiquidation change")
    ax.axhline(0, color="#999", linewidth=0.8)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"Equity {d.day}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def render(d: Day, png: str | None) -> str:
    parts = [f"<h1>Daily report {html.escape(d.day)}</h1>", f"<p>{html.escape(summary(d))}</p>"]
    if not d.trades and not d.equity:
        parts.append(
            f"<p class=none>No trading on {html.escape(d.day)}: no fills in the ledger that day.</p>"
        )
    if png:
        parts.append(f'<img src="{html.escape(png)}" alt="equity curve" style="max-width:100%">')
    broker = d.equity[-1].get("broker", {}) if d.equity else {}
    first = d.equity[0].get("broker", {}) if d.equity else {}
    nl0, nl1 = _dec(first.get("NetLiquidation")), _dec(broker.get("NetLiquidation"))
    parts.append("<h2>P&amp;L against the broker</h2>")
    parts.append(_table(["figure", "ledger", "broker"], [
        ["realized", d.realized.quantize(CENT), broker.get("RealizedPnL", "")],
        ["fees", d.commissions.quantize(CENT), ""],
        ["net realized", d.net, ""],
        ["P&L today (last)", d.equity[-1].get("pnl", "") if d.equity else "", ""],
        ["NetLiquidation change", "", "" if nl0 is None or nl1 is None else (nl1 - nl0).quantize(CENT)],
    ]))  # fmt: skip
    parts.append("<h2>Trades</h2>")
    rows = [
        [_iso(t.decided_ns), t.symbol, t.side, t.quantity, "" if t.decision_quote is None else t.decision_quote,
         t.fill_price.quantize(Decimal("0.0001")), "" if t.slippage_per_share is None
         else t.slippage_per_share.quantize(Decimal("0.0001")), "" if t.slippage is None else t.slippage,
         t.fees.quantize(CENT), t.why]
        for t in d.trades
    ]  # fmt: skip
    parts.append(_table(["decided", "symbol", "side", "qty", "quote at decision", "fill price",
                         "slippage/share", "slippage", "fees", "why"], rows))  # fmt: skip
    parts.append("<h2>Halts, reconnects and faults</h2>")
    parts.append(_table(["time", "severity", "what", "outcome"], [
        [_iso(int(e.get("ts_ns", 0))), e.get("severity", ""), e.get("title", ""), e.get("outcome", "")]
        for e in d.events
    ]) if d.events else "<p>none</p>")  # fmt: skip
    parts.append("<h2>Ledger against broker, per symbol</h2>")
    last = d.equity[-1].get("positions", {}) if d.equity else {}
    symbols = sorted({p["symbol"] for p in d.positions} | {k.split("/")[0] for k in last})
    ours = {p["symbol"]: p["ledger"] for p in d.positions}
    parts.append(_table(["symbol", "ledger", "broker (last seen)"], [
        [s, ours.get(s, "0"), last.get(f"{s}/broker", "unknown")] for s in symbols
    ]) if symbols else "<p>no positions</p>")  # fmt: skip
    style = "body{font:14px system-ui,sans-serif;margin:1em}table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}"  # noqa: E501
    head = f"<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'><title>Report {html.escape(d.day)}</title><style>{style}</style>"  # noqa: E501
    return head + "\n".join(parts) + "\n"


def write_report(settings: Settings, day: str) -> tuple[Path, str]:
    """Build var/reports/DAY.html (and DAY.png); returns its path and the summary line."""
    if not daybook.DAY.fullmatch(day):
        raise ValueError(f"not a date (YYYY-MM-DD): {day!r}")
    datetime.strptime(day, "%Y-%m-%d")  # ValueError for 2026-13-45
    d = build(settings, day)
    out = settings.var_path / "reports"
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    png = out / f"{day}.png"
    has_png = equity_png(d, png)
    page = out / f"{day}.html"
    page.write_text(render(d, png.name if has_png else None))
    return page, summary(d)


def main(argv: list[str]) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 78
    day = argv[0] if argv else datetime.now(tz=UTC).date().isoformat()
    try:
        page, line = write_report(settings, day)
    except ValueError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    print(page)
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
