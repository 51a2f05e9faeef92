"""Control a running gateway simulator: gateway-sim-ctl --port PORT [--control-dir DIR] [--json] COMMAND [ARGS].

It finds the simulator by its API port and talks to it over its unix control socket, never over the API port.
Exit codes: 0 done (the answer as JSON on stdout), 1 the simulator refused the command, 2 usage error (a bad
command or argument: one line, nothing changed), 69 no simulator answers on that port.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from shared import exitcodes

REPO = Path(__file__).resolve().parents[2]  # the repository: procs/cli/ is two levels down
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE = (
    exitcodes.OK,
    exitcodes.REFUSED,
    exitcodes.USAGE,
    exitcodes.UNAVAILABLE,
)
MAX_TIMEOUT = 3600.0


def default_control_dir() -> Path:
    try:
        from shared.config import load_settings

        return load_settings().run_dir
    except Exception:  # no or broken settings: the stack's default layout
        return REPO / "var" / "run"


def main(argv: list[str] | None = None) -> int:
    """The command: argv without the program name (None: this process's own arguments)."""
    from procs.gateway_sim.control import control_path, request, usage_text

    parser = argparse.ArgumentParser(
        prog="gateway-sim-ctl",
        description="Fault injection and status for a running gateway simulator.",
        epilog="commands:\n" + usage_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, required=True, help="the simulator's API port (e.g. 14002)")
    parser.add_argument("--control-dir", type=Path, default=None, help="default: the stack's var/run")
    parser.add_argument("--json", action="store_true", help="print the answer as one JSON line")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="status, drop, silent on, error 1100, ...")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.timeout) and 0 < args.timeout <= MAX_TIMEOUT):
        print(
            f"gateway-sim-ctl: --timeout must be a number of seconds above 0, at most {MAX_TIMEOUT:g}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not args.command:
        parser.print_usage(sys.stderr)
        print("gateway-sim-ctl: give a command; commands:\n" + usage_text(), file=sys.stderr)
        return EXIT_USAGE
    path = control_path(args.control_dir or default_control_dir(), args.port)
    try:
        answer = request(path, args.command, timeout=args.timeout)
    except (OSError, ValueError) as exc:  # ValueError: an answer that is not JSON (not our simulator)
        why = getattr(exc, "strerror", None) or exc
        print(
            f"gateway-sim-ctl: no simulator answers at {path} ({why}); "
            f"start one with: python -m procs.gateway_sim --port {args.port}",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    if not answer.get("ok"):
        print(f"gateway-sim-ctl: {answer.get('error')}", file=sys.stderr)
        return EXIT_USAGE if answer.get("usage") else EXIT_REFUSED
    answer.pop(
        "ok"
    )  # the exit code says it; what is printed is the command's own JSON (audit: exactly its keys)
    print(json.dumps(answer) if args.json else json.dumps(answer, indent=2, sort_keys=True))
    return EXIT_OK
