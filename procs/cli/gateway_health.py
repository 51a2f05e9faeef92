"""gateway-health: is the trading stack healthy? A passive, read-only report with Nagios exit codes.

usage: gateway-health [--json] [--wait SECONDS] [--timeout SECONDS]

  --json          one JSON document for scripts instead of the table
  --wait N        re-check every second until OK, for at most N seconds (then report what is left)
  --timeout S     how long to wait for the bridge and supervisord to answer (default 0.5; more than 0)

Reads the kernel's socket table (the Gateway port's LISTEN owner, CLOSE_WAIT sockets by side and owner), asks
the bridge for its health and supervisord for the program states, and reads the watchdog's and the monitor's
last heartbeats (the monitor's: its state, alert sinks and last successful delivery).
It never connects to the Gateway port. Every line that is not OK says what to do.
Exit: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for a bad option: one line, as Nagios plugins do, so a
typo in a check's command line never reads as CRITICAL), 78 a setting in .env is wrong.
"""

from __future__ import annotations

import argparse
import sys
import time

from loguru import logger

from procs.monitor.health import monitor_check, read_monitor
from procs.watchdog.health import EXIT_CODES, checks, overall, render_json, render_table
from procs.watchdog.probe import gather
from shared import exitcodes
from shared.cli import Parser, seconds, seconds_or_zero
from shared.config import ConfigError, load_settings

EXIT_UNKNOWN = exitcodes.NAGIOS_UNKNOWN
EXIT_CONFIG = exitcodes.CONFIG


class _Parser(Parser):
    usage_exit = EXIT_UNKNOWN


def parse(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="gateway-health", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--wait", type=seconds_or_zero, default=0.0, metavar="N", help="wait up to N s for OK"
    )
    parser.add_argument("--timeout", type=seconds, default=0.5, metavar="S", help="answer timeout, s")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The command: argv without the program name (None: run as the command, with this process's arguments)."""
    if argv is None:
        logger.remove()  # a report on stdout, nothing else: the adapters' debug lines are for the services' logs
        argv = sys.argv[1:]
    args = parse(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"gateway-health: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    deadline = time.monotonic() + args.wait
    while True:
        facts = gather(settings, timeout=args.timeout)
        found = [*checks(facts), monitor_check(facts, *read_monitor(settings))]
        status = overall(found)
        if status == "OK" or time.monotonic() + 1.0 > deadline:
            break
        time.sleep(1.0)
    print(render_json(facts, found) if args.json else render_table(facts, found))
    return EXIT_CODES[status]
