"""The trader's commands to the running executor, through its request socket.

usage: bin/trader [--json] [--timeout S] COMMAND

status                      halt state, P&L today, exposure, gateway and market session, symbols being
                            flattened, holdings the stack does not trade
positions                   the ledger's positions (with the broker's figure when known), marks and P&L
orders [--all]              working orders (--all: the last 50, finished ones included)
halt [REASON...]            stop trading now (persisted; survives restarts; cancels working orders)
resume                      lift the halt (refused while the daily loss is beyond its limit)
flatten [SYMBOL...] [--wait [S]]
                            halt, cancel working orders and close the positions in SYMBOLs (none named:
                            every position); --wait: until they are flat, at most S seconds (default 60)
reconcile                   ledger and broker side by side per symbol, other holdings, the halt
accept-broker SYMBOL --reason TEXT
                            set the ledger's SYMBOL position to the broker's (audited, with your user name)
alerts [--limit N]          the monitor's recent alerts (sent, held back, below ALERT_LEVEL) and its sinks
test-alert [MESSAGE...]     one message through every ALERT_URLS sink now; says which took it (exit 1 if any
                            failed)
report [DATE]               the daily report (default today, UTC): var/reports/DATE.html with its equity curve,
                            built here from the ledger (read-only) and the monitor's journals; no socket needed

Exit codes: 0 done; 1 the executor refused (the reason is printed), reconcile found a mismatch, or flatten
--wait ran out of time (what is left is printed); 2 usage (nothing was sent); 3 the executor (for alerts
and test-alert: the monitor) is not answering (the stack is down); 78 a setting is wrong.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from shared.bus import RequestTimeout, req_endpoint, request_once
from shared.cli import Parser, free_text, printable, seconds, seconds_or_zero, usage_error
from shared.config import ConfigError, Settings, load_settings
from shared.messages import (
    AcceptBrokerRequest,
    AlertsRequest,
    FlattenRequest,
    HaltRequest,
    OrdersRequest,
    PositionsRequest,
    ReconcileRequest,
    Reply,
    Request,
    ResumeRequest,
    SendTestAlertRequest,
    StatusRequest,
)

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_DOWN, EXIT_CONFIG = 0, 1, 2, 3, 78
FLATTEN_WAIT = 60.0  # seconds, for --wait given without a value
TEST_ALERT_TIMEOUT = 30.0  # a sink may take Apprise's timeouts to refuse: wait for every answer
MONITOR_COMMANDS = frozenset({"alerts", "test-alert"})
POLL_SECONDS = 0.5
_TICKER = re.compile(r"[A-Z][A-Z0-9.]{0,9}")

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


def _flattening_line(symbol: str, f: dict[str, Any]) -> str:
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
        lines.append(f"{'flattening':<18} {_flattening_line(symbol, f)}")
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
        text += f"\n  {_flattening_line(symbol, f)}"
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


def _left(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(1)  # unreadable: not known to be flat


def still_open(flattening: dict[str, dict[str, Any]], symbols: list[str]) -> dict[str, dict[str, Any]]:
    """The flattening entries of `symbols` (all when none are named) that are not flat yet."""
    wanted = set(symbols) or set(flattening)
    return {
        s: f
        for s, f in sorted(flattening.items())
        if s in wanted and (_left(f.get("left", "0")) != 0 or f.get("state") == "working")
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = Parser(prog="bin/trader", description="Talk to the running executor.")
    parser.add_argument("--json", action="store_true", help="print the raw answer as JSON")
    parser.add_argument(
        "--timeout", type=seconds, default=3.0, help="seconds to wait for the executor (default 3)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="halt state, P&L, exposure, flattening, other holdings")
    sub.add_parser("positions", help="positions with marks and P&L")
    orders = sub.add_parser("orders", help="working orders")
    orders.add_argument("--all", action="store_true", help="include finished orders (last 50)")
    halt = sub.add_parser("halt", help="stop trading now (persisted)")
    halt.add_argument("reason", nargs="*", help="why, in words")
    sub.add_parser("resume", help="lift the halt")
    flatten = sub.add_parser("flatten", help="halt, cancel working orders, close positions")
    flatten.add_argument("symbols", nargs="*", metavar="SYMBOL", help="only these (default: every position)")
    flatten.add_argument(
        "--wait",
        type=seconds_or_zero,
        nargs="?",
        const=FLATTEN_WAIT,
        metavar="SECONDS",
        help=f"wait until flat, at most SECONDS (default {FLATTEN_WAIT:g})",
    )
    sub.add_parser("reconcile", help="ledger and broker side by side")
    accept = sub.add_parser("accept-broker", help="take the broker's position for SYMBOL into the ledger")
    accept.add_argument("symbol", metavar="SYMBOL")
    accept.add_argument("--reason", required=True, help="why the broker's number is right (audited)")
    alerts = sub.add_parser("alerts", help="the monitor's recent alerts and its sinks")
    alerts.add_argument("--limit", type=int, default=20, metavar="N", help="how many (default 20)")
    test_alert = sub.add_parser("test-alert", help="send one message through every ALERT_URLS sink")
    test_alert.add_argument("message", nargs="*", help="the message (default: a fixed test line)")
    report = sub.add_parser("report", help="build the daily report var/reports/DATE.html")
    report.add_argument("date", nargs="?", metavar="DATE", help="YYYY-MM-DD (default: today, UTC)")
    for p in sub.choices.values():  # --json is also accepted after the command
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"uid {os.getuid()}"


def build_request(args: argparse.Namespace, settings: Settings) -> Request | str:
    """The request to send, or a usage error (one line) when an argument is wrong: then nothing is sent."""
    if args.command == "status":
        return StatusRequest()
    if args.command == "positions":
        return PositionsRequest()
    if args.command == "orders":
        return OrdersRequest(include_done=args.all)
    if args.command == "halt":
        return HaltRequest(reason=" ".join(free_text(r) for r in args.reason).strip() or "halted by operator")
    if args.command == "resume":
        return ResumeRequest()
    if args.command == "reconcile":
        return ReconcileRequest()
    if args.command == "alerts":
        if not 1 <= args.limit <= 500:
            return "alerts: --limit must be between 1 and 500"
        return AlertsRequest(limit=args.limit)
    if args.command == "test-alert":
        text = " ".join(free_text(m) for m in args.message).strip()
        return SendTestAlertRequest(message=text) if text else SendTestAlertRequest()
    if args.command == "accept-broker":
        symbol, reason = free_text(args.symbol).strip().upper(), free_text(args.reason).strip()
        if not _TICKER.fullmatch(symbol):
            return f"accept-broker: {symbol!r} is not a symbol"
        if not reason:
            return "accept-broker: --reason must say why the broker's number is right (it goes in the audit)"
        return AcceptBrokerRequest(symbol=symbol, reason=reason, operator=_operator())
    symbols = [free_text(s).strip().upper() for s in args.symbols]
    unknown = [s for s in symbols if s not in settings.symbols]
    if unknown:
        return f"flatten: not in SYMBOLS ({','.join(settings.symbols)}): {', '.join(unknown)}"
    return FlattenRequest(symbols=symbols)


class Down(Exception):
    """The executor is not answering; str() is the line to print."""


def ask(endpoint: str, request: Request, timeout: float, program: str = "executor") -> Reply:
    if not Path(endpoint.removeprefix("ipc://")).exists():
        raise Down(f"the {program} is not running (no {endpoint}); start the stack with `make run`")
    try:
        return request_once(endpoint, request, timeout=timeout)
    except RequestTimeout:
        raise Down(
            f"the {program} is not answering on {endpoint}: is the stack running? "
            f"Start it with `make run`, see `supervisorctl status {program}`."
        ) from None


def wait_until_flat(endpoint: str, symbols: list[str], wait: float, timeout: float) -> dict[str, Any]:
    """Poll the status until `symbols` (all when none named) are flat or `wait` seconds pass; what is left."""
    deadline = time.monotonic() + wait
    left: dict[str, Any] | None = None
    while True:
        try:
            reply = ask(endpoint, StatusRequest(), min(timeout, max(0.1, deadline - time.monotonic())))
            if reply.ok:
                left = still_open(reply.result.get("flattening") or {}, symbols)
                if not left:
                    return {}
        except Down:
            if time.monotonic() >= deadline and left is None:
                raise
        if time.monotonic() >= deadline:
            return left or {}
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def daily_report(settings: Settings, day: str | None) -> int:
    from datetime import UTC, datetime

    from procs.monitor.report import write_report

    try:
        page, line = write_report(settings, day or datetime.now(tz=UTC).date().isoformat())
    except ValueError as exc:
        return usage_error("trader", f"report: {printable(str(exc))}")
    print(page)
    print(line)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """The command: argv without the program name (None: this process's own arguments)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"trader: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "report":
        return daily_report(settings, args.date)
    request = build_request(args, settings)
    if isinstance(request, str):
        return usage_error("trader", request + "; nothing sent")
    program = "monitor" if args.command in MONITOR_COMMANDS else "executor"
    endpoint = req_endpoint(settings, program)
    timeout = max(args.timeout, TEST_ALERT_TIMEOUT) if args.command == "test-alert" else args.timeout
    try:
        reply = ask(endpoint, request, timeout, program)
    except Down as exc:
        print(f"trader: {exc}", file=sys.stderr)
        return EXIT_DOWN
    if not reply.ok:
        print(f"trader: {args.command} refused: {printable(reply.error)}", file=sys.stderr)
        return EXIT_REFUSED
    print(
        json.dumps(reply.result, indent=2, sort_keys=True, default=str)
        if args.json
        else render(args.command, reply.result)
    )
    code = EXIT_OK
    if args.command == "test-alert" and any(r != "ok" for r in (reply.result.get("sinks") or {}).values()):
        code = EXIT_REFUSED
    if args.command == "reconcile" and any(r.get("mismatch") for r in reply.result.get("symbols", [])):
        code = EXIT_REFUSED
    if args.command == "flatten" and args.wait is not None:
        assert isinstance(request, FlattenRequest)
        try:
            left = wait_until_flat(endpoint, request.symbols, args.wait, args.timeout)
        except Down as exc:
            print(f"trader: {exc}", file=sys.stderr)
            return EXIT_DOWN
        which = ", ".join(request.symbols) or "every position"
        if left:
            lines = [
                f"not flat after {args.wait:g}s:",
                *(f"  {_flattening_line(s, f)}" for s, f in left.items()),
            ]
            print("\n".join(lines))
            return EXIT_REFUSED
        print(f"flat: {which}")
    return code
