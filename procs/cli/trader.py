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
                            set the ledger's SYMBOL position to the broker's (audited, with your user name);
                            waits at least 25 s: the executor reads the broker's positions and executions
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

from procs.cli.trader_view import flattening_line, render
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
# commands whose answer waits on something slower than the executor itself: at least this long, whatever --timeout
SLOW_ANSWERS = {
    "test-alert": 30.0,  # a sink may take Apprise's timeouts to refuse: wait for every answer
    "accept-broker": 25.0,  # the executor reads the broker's positions and executions (up to 10 s each, slow Gateway)
}
MONITOR_COMMANDS = frozenset({"alerts", "test-alert"})
POLL_SECONDS = 0.5
_TICKER = re.compile(r"[A-Z][A-Z0-9.]{0,9}")


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


def timeout_for(command: str, asked: float) -> float:
    """How long to wait for `command`'s answer: --timeout, or longer for an answer that waits on the broker."""
    return max(asked, SLOW_ANSWERS.get(command, 0.0))


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
    timeout = timeout_for(args.command, args.timeout)
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
                *(f"  {flattening_line(s, f)}" for s, f in left.items()),
            ]
            print("\n".join(lines))
            return EXIT_REFUSED
        print(f"flat: {which}")
    return code
