"""Start, stop and show the supervised stack (what `make run` / `make stop` call).

usage: bin/stack start [--timeout SECONDS] [--foreground] | stop | status

start: checks the settings (one line and exit 78 when one is wrong, or when .env is open to other users),
makes VAR_DIR private, renders supervisord.conf with VAR_DIR's paths into VAR_DIR/run/supervisord.conf, starts
supervisord as a daemon, waits until the bridge says READY, prints the programs' states and the next commands.
--foreground: supervisord runs in this process instead, until it is stopped (for systemd); nothing is waited for.
It never connects to the Gateway port: readiness comes from the bridge's health request.
Exit codes: 0 done; 1 the stack did not come up (or stop) in time; 2 usage; 78 a setting is wrong.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shared import exitcodes
from shared.bus import RequestTimeout, req_endpoint, request_once
from shared.cli import Parser, seconds
from shared.config import (
    ConfigError,
    Settings,
    check_env_file_private,
    file_umask,
    load_settings,
)
from shared.messages import HealthReport, HealthRequest
from shared.programs import PROGRAM_NAMES
from shared.service import prepare_var
from shared.supervisor import (
    program_states,
    supervisor_rpc,
    supervisor_socket,
    write_supervisord_config,
)

REPO = Path(__file__).resolve().parents[2]  # the repository: procs/cli/ is two levels down
EXIT_OK, EXIT_FAIL, EXIT_CONFIG = exitcodes.OK, exitcodes.ERROR, exitcodes.CONFIG

NEXT_STEPS = """
next:
  bin/gateway-health          is all well, and what to do if not
  bin/trader status           positions, P&L, halt state   (bin/trader halt | resume | flatten | reconcile)
  {ctl} status        programs (activate the venv first: source .venv/bin/activate)
  {ctl} tail -f bridge
  make stop                   stop everything
"""


def _supervisorctl(settings: Settings) -> str:
    """How to run supervisorctl for this stack: plain from the repo root when VAR_DIR is the default."""
    conf = settings.run_dir / "supervisord.conf"
    return "supervisorctl" if settings.var_path == settings.home / "var" else f"supervisorctl -c {conf}"


def _states(settings: Settings, timeout: float) -> dict[str, dict[str, Any]] | None:
    try:
        return program_states(supervisor_socket(settings), timeout=timeout)
    except Exception:  # not running, or not answering: the same to a caller here
        return None


def _print_states(settings: Settings) -> None:
    states = _states(settings, 2.0)
    if states is None:
        print(f"supervisord is not answering on {supervisor_socket(settings)}; start it with: make run")
        return
    for name in ordered(states):
        info = states.get(name)
        if info is None:  # in the registry, not in supervisord's configuration: a stale or hand-edited file
            print(
                f"  {name:<12} {'MISSING':<9} not in {settings.run_dir / 'supervisord.conf'}; run: make stop && make run"
            )
        else:
            print(f"  {name:<12} {info['statename']:<9} {info['description']}")


def ordered(states: dict[str, Any]) -> list[str]:
    """The registry's programs in start order (shared/programs.py), then anything else supervisord runs."""
    return [*PROGRAM_NAMES, *sorted(set(states) - set(PROGRAM_NAMES))]


def _starting(settings: Settings) -> bool:
    states = _states(settings, 1.0) or {}
    return any(info["statename"] in ("STARTING", "BACKOFF") for info in states.values())


def _bridge_health(settings: Settings) -> HealthReport | None:
    import msgspec

    try:
        reply = request_once(req_endpoint(settings, "bridge"), HealthRequest(), timeout=1.0)
    except RequestTimeout:
        return None
    return msgspec.convert(reply.result, HealthReport) if reply.ok else None


def _prepare(settings: Settings) -> Path:
    """.env private, VAR_DIR private, this process's umask, the rendered supervisord.conf; ConfigError if not."""
    check_env_file_private()
    os.umask(file_umask(settings))  # supervisord's own log is opened before it applies its umask
    prepare_var(settings)
    return write_supervisord_config(settings)


def start(settings: Settings, timeout: float, foreground: bool = False) -> int:
    try:
        conf = _prepare(settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    supervisord = Path(sys.executable).parent / "supervisord"
    env = {**os.environ, "STACK_HOME": str(settings.home), "VAR_DIR": str(settings.var_path)}
    if _states(settings, 1.0) is not None:
        print("supervisord is already running; starting any stopped program")
        supervisor_rpc(supervisor_socket(settings), timeout=30.0).supervisor.startAllProcesses(False)
    elif foreground:
        os.chdir(REPO)
        os.execve(str(supervisord), [str(supervisord), "-n", "-c", str(conf)], env)
    else:
        done = subprocess.run([str(supervisord), "-c", str(conf)], check=False, env=env, cwd=REPO)
        if done.returncode != 0:
            print(
                f"supervisord did not start (exit {done.returncode}); see {settings.log_dir / 'supervisord.log'}"
            )
            return EXIT_FAIL
    print(
        f"waiting up to {timeout:g}s for the bridge to be READY (gateway: {settings.gateway}, port {settings.ib_port})"
    )
    deadline = time.monotonic() + timeout
    report = None
    while time.monotonic() < deadline:
        report = _bridge_health(settings)
        if report is not None and report.state == "READY":
            break
        time.sleep(0.5)
    while time.monotonic() < deadline and _starting(settings):
        time.sleep(0.5)  # let every program pass supervisord's startsecs before showing the table
    _print_states(settings)
    if report is None or report.state != "READY":
        state = report.state if report else "not answering"
        remedy = (
            report.remedy if report and report.remedy else "see the bridge's log and run bin/gateway-health"
        )
        print(f"bridge: {state}. {remedy} (logs: {settings.log_dir})")
        return EXIT_FAIL
    print(f"bridge READY: account {', '.join(report.accounts)}, server version {report.server_version}")
    print(NEXT_STEPS.format(ctl=f"{_supervisorctl(settings):<19}"))
    return EXIT_OK


def stop(settings: Settings) -> int:
    if _states(settings, 1.0) is None:
        print("the stack is not running")
        return EXIT_OK
    try:
        supervisor_rpc(supervisor_socket(settings), timeout=30.0).supervisor.shutdown()
    except Exception as exc:  # it may be stopping already: the pid file says when it is gone
        print(f"supervisord did not take the shutdown ({exc}); waiting for it anyway")
    pidfile = settings.run_dir / "supervisord.pid"
    deadline = time.monotonic() + 40
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if pidfile.exists():
        print(f"supervisord is still stopping; check {settings.log_dir / 'supervisord.log'}")
        return EXIT_FAIL
    print("stack stopped")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """The command: argv without the program name (None: this process's own arguments)."""
    parser = Parser(prog="bin/stack", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--timeout", type=seconds, default=90.0, help="seconds to wait for READY (start)")
    parser.add_argument("--foreground", action="store_true", help="start: run supervisord in this process")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "start":
        return start(settings, args.timeout, args.foreground)
    if args.command == "stop":
        return stop(settings)
    _print_states(settings)
    return EXIT_OK
