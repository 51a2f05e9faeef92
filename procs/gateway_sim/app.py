"""The gateway simulator's wiring: flags and settings into a SimServer plus its control socket, on the harness.

`python -m procs.gateway_sim --port 14002 [--speed 60] [--replay bars.csv] ...` runs it alone or under
supervisord; the shared harness (shared/service.py) gives it signals, its log file and exit codes: 0 stopped (or
GATEWAY=ib: not started), 2 a bad flag or --clock, 75 its port or control socket taken, 78 a configuration error
(an unreadable --state-file too). The simulator itself is server.py and what it holds; this only connects them.
It refuses the ports of a real Gateway/TWS (4001, 4002, 7496, 7497), listens on 127.0.0.1 only, and must never
take a bus or supervisor socket: nothing on the stack's bus is its business.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from loguru import logger

from procs.gateway_sim.control import ControlServer
from procs.gateway_sim.market import ReplayFileError, load_replay_file
from procs.gateway_sim.server import SimServer
from procs.gateway_sim.sim_config import CLOCK_MODES, SimConfig
from procs.gateway_sim.state_file import StateFileError
from shared import exitcodes
from shared.config import ConfigError, Settings
from shared.config_values import REAL_GATEWAY_PORTS
from shared.service import Service, StartAlone, TemporaryFailure, run_service

PROGRAM = "gateway_sim"
DESCRIPTION = (
    "Run the gateway simulator: a Gateway that speaks the real TWS API on 127.0.0.1, with faults on command."
)


def parse_args(argv: Sequence[str], settings: Settings | None) -> argparse.Namespace:
    """The flags, their defaults from the stack's settings (SIM_*, IB_PORT, IB_ACCOUNT) when there are any."""

    def default(name: str, fallback: Any) -> Any:
        value = getattr(settings, name, None) if settings is not None else None
        return fallback if value in (None, "") else value

    run_dir = settings.run_dir if settings is not None else Path("var") / "run"
    p = argparse.ArgumentParser(prog="python -m procs.gateway_sim", description=DESCRIPTION)
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
    return p.parse_args(list(argv))


def read_command_line(settings: Settings, argv: Sequence[str] | None = None) -> StartAlone:
    """The harness's `command_line` reader: argparse's own exits, and one line plus exit 2 for a bad --clock."""
    args = parse_args(sys.argv[1:] if argv is None else argv, settings)
    if args.clock not in CLOCK_MODES:  # a usage error like argparse's, but one line
        print(f"{PROGRAM}: --clock {str(args.clock)[:40]!r}: use session or wall", file=sys.stderr)
        raise SystemExit(exitcodes.USAGE)
    # its port is its single-instance guard: simulators on different ports may share one VAR_DIR
    return StartAlone(options=args, log_dir=args.log_dir, single_instance=False)


def _start_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--start {text!r} is not an ISO date/time (2026-01-05T14:30:00Z)") from None
    return start if start.tzinfo else start.replace(tzinfo=UTC)


def build_config(args: argparse.Namespace) -> SimConfig:
    """The SimConfig the flags describe; ConfigError (one line naming the flag) when one is wrong."""
    if args.port in REAL_GATEWAY_PORTS or not 1 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: use a free port that is not a real Gateway's (default 14002)")
    if args.speed <= 0 or args.tick_interval <= 0 or args.account_push_seconds <= 0:
        raise ConfigError("--speed, --tick-interval and --account-push-seconds must be positive")
    try:
        cash = Decimal(str(args.cash))
    except InvalidOperation:
        raise ConfigError(f"--cash {args.cash!r} is not a number") from None
    start = _start_time(str(args.start))
    replay = None
    if args.replay:
        try:
            replay = load_replay_file(Path(args.replay))
        except ReplayFileError as exc:
            raise ConfigError(f"replay file refused: {exc}") from None
    if not str(args.account).strip():
        raise ConfigError("--account must not be empty (a paper account looks like DU1234567)")
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


async def main(svc: Service) -> None:
    """The program `gateway_sim`: serve the API and the control socket until SIGTERM/SIGINT."""
    args = svc.options if svc.options is not None else parse_args([], svc.settings)
    if svc.settings.gateway == "ib":
        logger.warning("GATEWAY=ib: the simulator is not started")
        return
    config = build_config(args)
    try:
        server = SimServer(config)
    except (
        StateFileError
    ) as exc:  # never start empty over a kept account: the operator decides (state_file.py)
        raise ConfigError(str(exc)) from None
    try:
        await server.start()
    except OSError as exc:
        raise TemporaryFailure(
            f"cannot listen on 127.0.0.1:{config.port}: {exc.strerror or exc}; pick another --port"
        ) from None
    control = ControlServer(server, args.control_dir)
    try:
        await control.start()
    except OSError as exc:
        await server.stop()
        raise TemporaryFailure(f"control socket: {exc}") from None
    if not config.account.startswith(("DU", "DF")):
        logger.warning("account {} does not look like a paper account (DU...)", config.account)
    print(f"gateway simulator on 127.0.0.1:{server.port}, control socket {control.path}", flush=True)
    svc.set_state("RUNNING")
    try:
        await svc.stop.wait()
        logger.info("stopping on signal")
    finally:
        await control.stop()
        await server.stop()


def run(argv: Sequence[str] | None = None) -> int:
    """The simulator with these flags (None: the process's own), as `python -m procs.gateway_sim` runs it."""
    return run_service(PROGRAM, main, command_line=lambda settings: read_command_line(settings, argv))
