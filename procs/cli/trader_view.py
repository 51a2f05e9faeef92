"""What bin/trader prints: the executor's and the monitor's answers as text a person reads at a terminal.

Pure formatting of the plain maps the executor and the monitor answer with; it must never ask anything of the
stack or decide anything (procs/cli/trader.py sends the requests and picks the exit code).
"""

from __future__ import annotations

import time
from typing import Any

from shared.cli import printable

STATUS_LINES = (
    ("state", "state"),
    ("execution", "execution"),
    ("gateway", "gateway"),
    ("gateway reason", "gateway_reason"),
    ("orders go", "orders_gate"),
    ("market", "market_session"),
    ("market time", "market_time"),
    ("halted", "halted"),
    ("halt reason", "halt_reason"),
    ("halted since", "halted_since"),
    ("circuit breaker", "circuit_breaker"),
    ("trading day", "trading_day"),
    ("P&L today", "daily_pnl"),
    ("daily loss limit", "daily_loss_limit"),
    ("realized today", "realized_today"),
    ("commissions today", "commissions_today"),
    ("unknown commission", "commissions_unknown"),
    ("unrealized", "unrealized"),
    ("gross exposure", "gross_exposure"),
    ("positions", "positions"),
    ("working orders", "working_orders"),
    ("last reconcile", "last_reconcile"),
    ("mismatches", "position_mismatches"),
    ("last rejection", "last_rejection"),
)
POSITION_COLUMNS = (
    "symbol",
    "quantity",
    "avg_cost",
    "mark",
    "market_value",
    "unrealized",
    "realized",
    "broker_quantity",
    "stop_type",
    "stop_trigger",
    "stop_quantity",
    "stop_state",
)
# the protective stop at the broker: type (STP/TRAIL), trigger (a TRAIL's as it has trailed), shares, order state
POSITION_HEADINGS = (*POSITION_COLUMNS[:-4], "stop", "trigger", "stop_qty", "stop_state")
ORDER_COLUMNS = (
    "client_order_id",
    "symbol",
    "side",
    "quantity",
    "type",
    "limit",
    "status",
    "filled",
    "avg_price",
    "reason",
)
# reconcile: (key in the reply, column heading)
RECONCILE_COLUMNS = (
    ("symbol", "symbol"),
    ("ledger_quantity", "ledger qty"),
    ("broker_quantity", "broker qty"),
    ("difference", "difference"),
    ("ledger_avg_cost", "ledger avg"),
    ("broker_avg_cost", "broker avg"),
    ("ledger_cash", "ledger cash"),
    ("working_orders", "working"),
    ("check", "check"),
)
_WORDS = frozenset(
    {"symbol", "side", "type", "status", "reason", "client_order_id", "check", "stop_type", "stop_state"}
)


def table(rows: list[dict[str, Any]], columns: tuple[str, ...], headings: tuple[str, ...] = ()) -> str:
    """A plain text table; numbers right-aligned, words left-aligned."""
    if not rows:
        return "(none)"
    heads = list(headings or columns)
    cells = [[printable(str(r.get(c, ""))) for c in columns] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(heads)]

    def fmt(values: list[str]) -> str:
        out = []
        for v, w, c in zip(values, widths, columns, strict=True):
            out.append(v.ljust(w) if c in _WORDS else v.rjust(w))
        return "  ".join(out).rstrip()

    return "\n".join([fmt(heads), fmt(["-" * w for w in widths]), *(fmt(r) for r in cells)])


def _holding(h: dict[str, Any]) -> str:
    local = h.get("local_symbol") or ""
    kind = f" {h['sec_type']}" if h.get("sec_type") else ""
    where = f" ({local})" if local else ""
    return printable(f"{h.get('symbol', '?')}{kind}{where}: {h.get('quantity', '?')}")


def flattening_line(symbol: str, f: dict[str, Any]) -> str:
    order = f.get("working_order") or ""
    line = f"{symbol}: {f.get('state', '?')}, {f.get('left', '?')} left"
    return printable(line + (f", working order {order}" if order else ""))


def show_status(result: dict[str, Any]) -> str:
    lines = []
    for label, key in STATUS_LINES:
        value = result.get(key, "")
        if value in ("", [], None) and key not in ("halted",):
            continue
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        lines.append(f"{label:<18} {printable(str(value))}")
    for symbol, f in sorted((result.get("flattening") or {}).items()):
        lines.append(f"{'flattening':<18} {flattening_line(symbol, f)}")
    for h in result.get("other_holdings") or []:
        lines.append(f"{'other holding':<18} {_holding(h)}")
    return "\n".join(lines)


def show_reconcile(result: dict[str, Any]) -> str:
    rows = [{**r, "check": "MISMATCH" if r.get("mismatch") else "ok"} for r in result.get("symbols", [])]
    keys, heads = zip(*RECONCILE_COLUMNS, strict=True)
    lines = [table(rows, keys, heads)]
    others = result.get("other_holdings") or []
    lines.append(
        "other holdings (not traded by the stack, never reconciled):" if others else "other holdings: none"
    )
    lines += [f"  {_holding(h)}" for h in others]
    if result.get("last_reconcile"):
        lines.append(f"last reconcile: {result['last_reconcile']}")
    halted = result.get("halted")
    lines.append(
        f"halted: yes ({result.get('halt_reason') or 'no reason given'})" if halted else "halted: no"
    )
    return "\n".join(lines)


def show_accepted(result: dict[str, Any]) -> str:
    return (
        f"accepted the broker's {result.get('symbol')}: ledger {result.get('ledger_before')} -> "
        f"{result.get('broker')}, cash adjustment {result.get('cash_adjustment')} (audit {result.get('audit_id')})"
    )


def show_flatten(result: dict[str, Any]) -> str:
    orders = result.get("orders", [])
    text = f"halted: {result.get('halted')}; closing orders sent: {len(orders)}"
    if orders:
        text += "\n" + "\n".join(f"  {o}" for o in orders)
    for symbol, f in sorted((result.get("flattening") or {}).items()):
        text += f"\n  {flattening_line(symbol, f)}"
    if result.get("last_rejection"):
        text += f"\nlast rejection: {result['last_rejection']}"
    return text


def show_alerts(result: dict[str, Any]) -> str:
    lines = []
    for a in result.get("alerts", []):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(a.get("ts_ns", 0)) / 1e9))
        went = ", ".join(a.get("delivered_to") or []) or "-"
        lines.append(
            printable(
                f"{stamp}Z {a.get('severity', '?'):<8} {a.get('outcome', '?'):<12} {a.get('title', '')} [{went}]"
            )
        )
    if not lines:
        lines.append("(no alerts)")
    sinks = result.get("sinks") or []
    lines.append(
        f"ALERT_LEVEL {result.get('level', '?')}; sinks: "
        + (", ".join(_sink_line(s) for s in sinks) or "none")
    )
    return "\n".join(lines)


def _sink_line(s: dict[str, Any]) -> str:
    line = f"{s.get('name')} ({s.get('delivered', 0)} delivered, {s.get('queued', 0)} waiting"
    if s.get("failing_in_a_row"):
        line += f", failing x{s['failing_in_a_row']}: {s.get('last_error', '')}"
    return printable(line + ")")


def show_test_alert(result: dict[str, Any]) -> str:
    sinks = result.get("sinks") or {}
    if not sinks:
        return printable(result.get("hint") or "no sinks configured")
    return "\n".join(printable(f"{name}: {outcome}") for name, outcome in sinks.items())


def render(command: str, result: Any) -> str:
    if command == "alerts":
        return show_alerts(result)
    if command == "test-alert":
        return show_test_alert(result)
    if command in ("status", "halt", "resume"):
        return show_status(result)
    if command == "positions":
        return table(result, POSITION_COLUMNS, POSITION_HEADINGS)
    if command == "orders":
        return table(result, ORDER_COLUMNS)
    if command == "reconcile":
        return show_reconcile(result)
    if command == "accept-broker":
        return show_accepted(result)
    return show_flatten(result)
