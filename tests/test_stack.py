"""The whole stack under a real supervisord with the real supervisord.conf: starts, trades, stops cleanly.

What `make run` promises a trader: every program RUNNING, the bridge READY, gateway-health OK, supervisorctl
usable from the stack's home with no -c, and a bad setting that ends FATAL instead of restart-looping.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil

from tests.support.stack import ALL_PROGRAMS, REPO, running_stack

VENV_BIN = REPO / ".venv" / "bin"


def _health(stack_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bin" / "gateway-health"), "--json", *args],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_whole_stack_starts_reports_healthy_and_stops_without_close_wait() -> None:
    env = {"SYMBOLS": "AAPL,MSFT", "EXECUTION": "broker"}
    with running_stack(env, programs=ALL_PROGRAMS, timeout=40) as stack:
        health = _health(stack.env(), "--wait", "40")
        report = json.loads(health.stdout)
        assert health.returncode == 0, health.stdout + health.stderr
        assert report["status"] == "OK"
        ctl = subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "status"],
            cwd=stack.home,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ctl.returncode == 0, ctl.stdout + ctl.stderr
        for program in ALL_PROGRAMS:
            assert program in ctl.stdout and "RUNNING" in ctl.stdout
        pids = {p: stack.info(p)["pid"] for p in ALL_PROGRAMS}
        port = stack.settings.ib_port
    for program, pid in pids.items():
        assert not psutil.pid_exists(pid), f"{program} (pid {pid}) outlived supervisord"
    leftovers = [
        c
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_CLOSE_WAIT
        and port in (c.laddr.port if c.laddr else 0, c.raddr.port if c.raddr else 0)
    ]
    assert leftovers == []


def test_a_bad_setting_ends_fatal_with_one_line_instead_of_restart_looping() -> None:
    with running_stack({"STRATEGY": "no_such_strategy"}, programs=("gateway_sim",), timeout=40) as stack:
        stack.rpc().supervisor.startProcess("strategy", False)
        stack.wait_state("strategy", "FATAL", timeout=60)
        log = (stack.settings.log_dir / "strategy.supervisor.log").read_text()
        lines = [line for line in log.splitlines() if "STRATEGY" in line]
        assert lines and "Traceback" not in log
        time.sleep(3)  # nothing should happen now: FATAL stays FATAL until the trader fixes the setting
        assert stack.info("strategy")["statename"] == "FATAL"
        log = (stack.settings.log_dir / "strategy.supervisor.log").read_text()
        assert len([line for line in log.splitlines() if "STRATEGY" in line]) == len(lines) <= 4
