"""Run the gateway simulator: `python -m procs.gateway_sim --port 14002 [--speed 60] [--replay bars.csv] ...`.

Wires flags and settings into a SimServer plus its control socket, and handles signals; nothing else.
Exit codes: 0 stopped (or GATEWAY=ib: not started), 2 bad --clock, 75 port or control socket taken, 78 configuration
error (an unreadable --state-file too).
It refuses the ports of a real Gateway/TWS (4001, 4002, 7496, 7497) and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from loguru import logger

EXIT_OK, EXIT_USAGE, EXIT_TEMPFAIL, EXIT_CONFIG = 0, 2, 75, 78
CLOCK_MODES = ("session", "wall")  # as server.CLOCK_MODES (not imported here: --help must stay quick)


class ConfigProblem(Exception):
    """One line naming the bad option and what to do."""


def load_settings_or_none() -> Any:
    """The stack's settings when shared.config is there; ConfigProblem when they do not load."""
    try:
        from shared.config import ConfigError, load_settings
    except ImportError:
        return None
    try:
        return load_settings()
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None


def parse_args(argv: list[str], settings: Any) -> argparse.Namespace:
    def default(name: str, fallback: Any) -> Any:
        value = getattr(settings, name, None) if settings is not None else None
        return fallback if value in (None, "") else value

    run_dir = Path(default("var_dir", "var")) / "run"
    if settings is not None and hasattr(settings, "run_dir"):
        run_dir = settings.run_dir
    p = argparse.ArgumentParser(prog="python -m procs.gateway_sim", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=default("ib_port", 14002), help="API port on 127.0.0.1")
    p.add_argument("--account", default=default("ib_account", "DU1234567"), help="the paper account (DU...)")
    p.add_argument(
        "--speed", type=float, default=default("sim_speed", 1.0), help="sim clock speed-up, e.g. 60"
    )
    p.add_argument("--seed", type=int, default=default("sim_seed", 42), help="price path seed")
    p.add_argument("--cash", default=str(default("sim_cash", "1000000")), help="starting cash in USD")
    p.add_argument(
        "--replay", default=default("sim_replay_file", ""), help="bar file (CSV/parquet) to replay"
    )
    p.add_argument(
        "--start", default=default("sim_start", ""), help="sim clock start, ISO 8601 (default: last open)"
    )
    p.add_argument(
        "--clock",
        default=default("sim_clock", "session"),
        help="session (default): simulated time from --start at --speed; wall: real time, speed 1, market open",
    )
    p.add_argument("--control-dir", type=Path, default=run_dir, help="where the control socket lives")
    p.add_argument(
        "--log-dir", type=Path, default=None, help="log file directory (default: the stack's var/log)"
    )
    p.add_argument("--tick-interval", type=float, default=0.25, help="real seconds between quote updates")
    p.add_argument(
        "--account-push-seconds",
        type=float,
        default=180.0,
        help="simulated seconds between pushes of changed account values (IB: 3 minutes)",
    )
    p.add_argument("--lazy-close", action="store_true", help="leave closed sessions in CLOSE_WAIT (a fault)")
    p.add_argument("--readonly", action="store_true", help="reject orders with 321, like Read-Only API")
    p.add_argument("--no-pacing", action="store_true", help="do not enforce 50 messages/s")
    p.add_argument(
        "--state-file",
        type=Path,
        default=os.environ.get("SIM_STATE_FILE") or None,  # supervisord.conf sets it under VAR_DIR
        help="keep the account (positions, cash, id counters) in this file across restarts "
        "(default: $SIM_STATE_FILE; none: the account starts afresh)",
    )
    return p.parse_args(argv)


def build_config(args: argparse.Namespace) -> Any:
    from procs.gateway_sim.market import ReplayFileError, load_replay_file
    from procs.gateway_sim.server import REAL_GATEWAY_PORTS, SimConfig

    if args.port in REAL_GATEWAY_PORTS or not 1 <= args.port <= 65535:
        raise ConfigProblem(
            f"--port {args.port}: use a free port that is not a real Gateway's (default 14002)"
        )
    if args.speed <= 0 or args.tick_interval <= 0 or args.account_push_seconds <= 0:
        raise ConfigProblem("--speed, --tick-interval and --account-push-seconds must be positive")
    try:
        cash = Decimal(str(args.cash))
    except InvalidOperation:
        raise ConfigProblem(f"--cash {args.cash!r} is not a number") from None
    start = None
    if args.start:
        try:
            start = datetime.fromisoformat(str(args.start))
        except ValueError:
            raise ConfigProblem(
                f"--start {args.start!r} is not an ISO date/time (2026-01-05T14:30:00Z)"
            ) from None
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
    replay = None
    if args.replay:
        try:
            replay = load_replay_file(Path(args.replay))
        except ReplayFileError as exc:
            raise ConfigProblem(f"replay file refused: {exc}") from None
    if not str(args.account).strip():
        raise ConfigProblem("--account must not be empty (a paper account looks like DU1234567)")
    return SimConfig(
        port=args.port,
        account=str(args.account).strip(),
        speed=args.speed,
        seed=args.seed,
        cash=cash,
        start=start,
        replay=replay,
        tick_interval=args.tick_interval,
        account_push_seconds=args.account_push_seconds,
        lazy_close=args.lazy_close,
        readonly=args.readonly,
        pacing=not args.no_pacing,
        clock=args.clock,
        state_file=args.state_file,
    )


async def serve(config: Any, control_dir: Path) -> int:
    from procs.gateway_sim.control import ControlServer
    from procs.gateway_sim.server import SimServer
    from procs.gateway_sim.state_file import StateFileError

    try:
        server = SimServer(config)
    except (
        StateFileError
    ) as exc:  # never start empty over a kept account: the operator decides (state_file.py)
        logger.error("{}", exc)
        return EXIT_CONFIG
    try:
        await server.start()
    except OSError as exc:
        logger.error(
            "cannot listen on 127.0.0.1:{}: {}; pick another --port", config.port, exc.strerror or exc
        )
        return EXIT_TEMPFAIL
    control = ControlServer(server, control_dir)
    try:
        await control.start()
    except OSError as exc:
        logger.error("control socket: {}", exc)
        await server.stop()
        return EXIT_TEMPFAIL
    if not config.account.startswith(("DU", "DF")):
        logger.warning("account {} does not look like a paper account (DU...)", config.account)
    print(f"gateway simulator on 127.0.0.1:{server.port}, control socket {control.path}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("stopping on signal")
    await control.stop()
    await server.stop()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings_or_none()
    except ConfigProblem as exc:
        print(f"gateway_sim: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    args = parse_args(sys.argv[1:] if argv is None else argv, settings)
    if args.clock not in CLOCK_MODES:  # a usage error like argparse's, but one line
        print(f"gateway_sim: --clock {str(args.clock)[:40]!r}: use session or wall", file=sys.stderr)
        return EXIT_USAGE
    try:
        from shared.log import setup_logging

        setup_logging("gateway_sim", settings, log_dir=args.log_dir)
    except ImportError:
        pass
    if settings is not None and getattr(settings, "gateway", "sim") == "ib":
        logger.warning("GATEWAY=ib: the simulator is not started")
        return EXIT_OK
    try:
        config = build_config(args)
    except ConfigProblem as exc:
        logger.error("{}", exc)  # stderr: setup_logging (or loguru's default sink) shows errors there
        return EXIT_CONFIG
    return asyncio.run(serve(config, args.control_dir))


if __name__ == "__main__":
    sys.exit(main())
