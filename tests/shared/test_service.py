"""The service harness in a real process: heartbeats, SIGTERM stops cleanly (0), SIGHUP stops to be restarted (75),
a bad setting or a typo in .env exits 78, an open .env is refused, every file it makes is private."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.stack import wait_for, write_env_file

PROGRAM = """
import asyncio
import gc
from shared.service import run_service
async def main(svc):
    svc.detail["frozen_at_start"] = gc.get_freeze_count()
    svc.set_state("RUNNING")
    svc.detail["frozen_when_running"] = gc.get_freeze_count()
    svc.count("loops")
    await svc.stop.wait()
raise SystemExit(run_service("features", main))
"""


def _start(home: Path, **env: str) -> subprocess.Popen[str]:
    full = {
        **os.environ,
        "STACK_HOME": str(home),
        "VAR_DIR": str(home / "var"),
        "HEARTBEAT_SECONDS": "0.2",
        **env,
    }
    return subprocess.Popen([sys.executable, "-c", PROGRAM], env=full, stderr=subprocess.PIPE, text=True)


def _heartbeat(home: Path) -> dict[str, Any]:
    """The program's heartbeat file, once it has written one."""
    path = home / "var" / "run" / "heartbeat-features.json"
    hb: dict[str, Any] = wait_for(
        "a heartbeat file", lambda: path.exists() and json.loads(path.read_text()), 10
    )
    return hb


def test_sigterm_stops_cleanly_with_exit_0_after_heartbeats(short_tmp: Path) -> None:
    proc = _start(short_tmp)
    try:
        hb = _heartbeat(short_tmp)
        assert hb["program"] == "features" and hb["pid"] == proc.pid and hb["state"] == "RUNNING"
        assert hb["counters"]["loops"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        log = (short_tmp / "var" / "log" / "features.log").read_text()
        assert "features stopped" in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_bad_setting_exits_78_with_one_line_naming_the_key(short_tmp: Path) -> None:
    proc = _start(short_tmp, IB_CLIENT_ID="minus one")
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 78
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "IB_CLIENT_ID" in lines[0] and "Traceback" not in err


def test_heartbeats_keep_coming_while_the_program_is_idle(short_tmp: Path) -> None:
    proc = _start(short_tmp)
    try:
        first = _heartbeat(short_tmp)["ts_ns"]
        time.sleep(0.6)
        assert _heartbeat(short_tmp)["ts_ns"] > first
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_second_instance_of_a_program_refuses_to_start(short_tmp: Path) -> None:
    first = _start(short_tmp)
    try:
        hb_file = short_tmp / "var" / "run" / "heartbeat-features.json"
        wait_for("the first instance's heartbeat", hb_file.exists, 10)
        second = _start(short_tmp)
        _, err = second.communicate(timeout=20)
        assert second.returncode == 75 and "already running" in err
        assert first.poll() is None  # the first one keeps its sockets
    finally:
        first.terminate()
        first.wait(timeout=10)


def test_start_up_heap_is_frozen_so_collections_in_a_burst_stay_short(short_tmp: Path) -> None:
    proc = _start(short_tmp)
    try:
        detail = _heartbeat(short_tmp)["detail"]
        # the imports are frozen before the program's main runs, and again what start-up made, once RUNNING
        assert detail["frozen_at_start"] > 10_000
        assert detail["frozen_when_running"] > detail["frozen_at_start"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _exit_of(proc: subprocess.Popen[str]) -> tuple[int, list[str]]:
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, [line for line in err.splitlines() if line.strip()]


def test_a_typo_in_env_stops_a_real_program_with_exit_78_and_one_line(short_tmp: Path) -> None:
    write_env_file(short_tmp / ".env", {"SYMBOLS": "AAPL", "DAILY_LOSS_LIMT": "10"})
    code, lines = _exit_of(_start(short_tmp))
    assert code == 78
    assert len(lines) == 1 and "DAILY_LOSS_LIMT" in lines[0] and "DAILY_LOSS_LIMIT" in lines[0], lines


def test_a_program_refuses_to_start_while_env_is_open_to_other_users(short_tmp: Path) -> None:
    write_env_file(short_tmp / ".env", {"SYMBOLS": "AAPL"})
    (short_tmp / ".env").chmod(0o644)
    code, lines = _exit_of(_start(short_tmp))
    assert code == 78 and len(lines) == 1 and "chmod 600" in lines[0], lines
    assert not (short_tmp / "var" / "run" / "heartbeat-features.json").exists()


def test_sighup_stops_cleanly_with_exit_75_so_supervisord_starts_it_again(short_tmp: Path) -> None:
    proc = _start(short_tmp)
    try:
        _heartbeat(short_tmp)
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=10) == 75
        assert "features stopped by SIGHUP" in (short_tmp / "var" / "log" / "features.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_every_file_a_program_makes_is_private_whatever_umask_it_was_started_with(short_tmp: Path) -> None:
    old = os.umask(0o002)  # a careless login shell
    try:
        proc = _start(short_tmp)
    finally:
        os.umask(old)
    try:
        hb = _heartbeat(short_tmp)
        var = short_tmp / "var"
        for d in (var, var / "run", var / "log", var / "data"):
            assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
        for f in (var / "log" / "features.log", var / "run" / "heartbeat-features.json"):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        # the beat's monotonic stamp, for readers whose age must not move with the wall clock
        assert 0 <= time.monotonic_ns() - hb["mono_ns"] < 30e9
    finally:
        proc.terminate()
        proc.wait(timeout=10)


ALONE = """
import argparse, sys
from pathlib import Path
from shared.service import StartAlone, TemporaryFailure, run_service
def read(settings):
    p = argparse.ArgumentParser()
    p.add_argument("--log-dir", type=Path)
    p.add_argument("--busy", action="store_true")
    args = p.parse_args(sys.argv[1:])
    return StartAlone(options=args, log_dir=args.log_dir)
async def main(svc):
    if svc.options.busy:
        raise TemporaryFailure("port 1 is taken; pick another")
    svc.set_state("RUNNING")
    await svc.stop.wait()
raise SystemExit(run_service("features", main, command_line=read))
"""


def _start_alone(home: Path, *argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "STACK_HOME": str(home), "VAR_DIR": str(home / "var"), "HEARTBEAT_SECONDS": "0.2"}
    cmd = [sys.executable, "-c", ALONE, *argv]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_programs_own_command_line_is_read_before_anything_starts(short_tmp: Path) -> None:
    code, lines = _exit_of(_start_alone(short_tmp, "--no-such-flag"))
    assert code == 2 and "--no-such-flag" in lines[-1]  # argparse's own usage error
    assert not (short_tmp / "var").exists()  # nothing made, no lock taken, no log opened
    proc = _start_alone(short_tmp, "--log-dir", str(short_tmp / "logs"))
    try:
        assert _heartbeat(short_tmp)["state"] == "RUNNING"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "features stopped" in (short_tmp / "logs" / "features.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_temporary_failure_exits_75_with_one_line(short_tmp: Path) -> None:
    code, lines = _exit_of(_start_alone(short_tmp, "--busy"))
    assert code == 75 and lines == ["features: port 1 is taken; pick another"], lines
