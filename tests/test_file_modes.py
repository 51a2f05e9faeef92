"""Private by default: `make setup` creates .env 0600 and var/ 0700, the stack refuses to start (one line) while
.env is open to other users, and with FILE_GROUP the logs are 0640 for that group. (The modes after a real start
of the whole stack are checked in test_var_dir.py, on the stack it starts.)"""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.support.stack import REPO, wait_for, write_env_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_make_setup_creates_a_private_env_and_var(short_tmp: Path) -> None:
    for name in ("Makefile", ".env.example"):
        shutil.copy(REPO / name, short_tmp / name)
    done = subprocess.run(
        ["make", "-s", ".env", "var/run"], cwd=short_tmp, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert _mode(short_tmp / ".env") == 0o600
    for d in ("var", "var/run", "var/log", "var/data"):
        assert _mode(short_tmp / d) == 0o700, d


def test_bin_stack_refuses_to_start_with_an_env_others_can_read(short_tmp: Path) -> None:
    write_env_file(short_tmp / ".env", {"SYMBOLS": "AAPL", "VAR_DIR": str(short_tmp / "var")})
    (short_tmp / ".env").chmod(0o640)
    done = subprocess.run(
        [sys.executable, str(REPO / "bin" / "stack"), "start", "--timeout", "5"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STACK_HOME": str(short_tmp)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "chmod 600" in lines[0] and "Traceback" not in done.stderr
    assert not (short_tmp / "var" / "run" / "supervisord.pid").exists(), "nothing was started"


PROGRAM = """
from shared.service import run_service
async def main(svc):
    svc.set_state("RUNNING")
    await svc.stop.wait()
raise SystemExit(run_service("features", main))
"""


def test_with_file_group_logs_are_readable_by_that_group_only(short_tmp: Path) -> None:
    group = grp.getgrgid(os.getgid())
    write_env_file(short_tmp / ".env", {"FILE_GROUP": group.gr_name, "HEARTBEAT_SECONDS": "0.2"})
    env = {**os.environ, "STACK_HOME": str(short_tmp), "VAR_DIR": str(short_tmp / "var")}
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM], env=env, cwd=REPO)
    try:
        log = short_tmp / "var" / "log" / "features.log"
        wait_for("the program's log", log.exists, 20)
        var = short_tmp / "var"
        assert _mode(log) == 0o640 and log.stat().st_gid == group.gr_gid
        assert _mode(var / "log") == 0o2750 and (var / "log").stat().st_gid == group.gr_gid
        assert _mode(var) == 0o750
        assert _mode(var / "run") == 0o700  # sockets and locks stay private
    finally:
        proc.terminate()
        proc.wait(timeout=10)
