"""A real supervisord running the real supervisord.conf in a temporary stack home, for integration tests.

The home gets a symlink to the repo's .venv, a copy of supervisord.conf (programs not asked for are set to
autostart=false), and a private .env with the test's settings; supervisord runs that copy rendered with
VAR_DIR's paths, like bin/stack does (VAR_DIR may be given in `env`, absolute or relative to the home).
Everything it starts is stopped by pid at exit, even when the test fails; it never signals anything it did
not start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from shared.config import Settings, load_settings
from shared.programs import PROGRAM_NAMES
from shared.service import prepare_var
from shared.supervisor import supervisor_rpc, write_supervisord_config
from tests.support.sim import free_port
from tests.support.wait import wait_for as wait_for  # re-exported: tests and benches import it from here

REPO = Path(__file__).resolve().parents[2]
ALL_PROGRAMS = PROGRAM_NAMES  # shared/programs.py, in start order

# Fast settings for tests: quick heartbeats, short budgets, a sped-up simulated clock.
TEST_DEFAULTS = {
    "GATEWAY": "sim",
    "SIM_SPEED": "60",
    "HEARTBEAT_SECONDS": "0.5",
    "BRIDGE_HEARTBEAT_SECONDS": "1",
    "BRIDGE_HEARTBEAT_TIMEOUT": "3",
    "RECONNECT_BACKOFF_MAX": "2",
    "WATCHDOG_SCAN_SECONDS": "1",
    "MARKET_HOURS": "always",
    "LOG_LEVEL": "DEBUG",
}


@dataclass
class Stack:
    home: Path
    settings: Settings
    process: subprocess.Popen[bytes]
    seen_pids: set[int] = field(default_factory=set)

    @property
    def socket_path(self) -> Path:
        return self.settings.run_dir / "supervisor.sock"

    def rpc(self, timeout: float = 5.0) -> Any:
        return supervisor_rpc(self.socket_path, timeout)

    def info(self, program: str) -> dict[str, Any]:
        info: dict[str, Any] = self.rpc().supervisor.getProcessInfo(program)
        if info.get("pid"):
            self.seen_pids.add(int(info["pid"]))
        return info

    def wait_state(self, program: str, state: str, timeout: float = 30.0) -> dict[str, Any]:
        return dict(
            wait_for(
                f"{program} {state}", lambda: (i := self.info(program))["statename"] == state and i, timeout
            )
        )

    def log(self, program: str) -> str:
        path = self.settings.log_dir / f"{program}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def env(self) -> dict[str, str]:
        """Environment for a test's own subprocess (a CLI) that should see this stack."""
        return {**os.environ, "STACK_HOME": str(self.home)}


def _config_text(programs: Sequence[str]) -> str:
    out, section = [], ""
    for line in (REPO / "supervisord.conf").read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[] ").removeprefix("program:")
        if line.replace(" ", "").startswith("autostart=") and section not in programs:
            line = "autostart = false"
        out.append(line)
    return "\n".join(out) + "\n"


def _reap(pids: set[int]) -> None:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=5)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def _stop(stack: Stack) -> None:
    with contextlib.suppress(Exception):
        for info in stack.rpc().supervisor.getAllProcessInfo():
            if info.get("pid"):
                stack.seen_pids.add(int(info["pid"]))
    if stack.process.poll() is None:
        stack.process.terminate()  # supervisord stops its children in reverse priority order
    try:
        stack.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        stack.process.wait()
    _reap({p for p in stack.seen_pids if psutil.pid_exists(p)})


@contextlib.contextmanager
def running_stack(
    env: Mapping[str, str] | None = None,
    programs: Sequence[str] = ("gateway_sim", "bridge"),
    timeout: float = 30.0,
) -> Iterator[Stack]:
    """supervisord with `programs` started (each waited for RUNNING); yields the Stack, stops it all at exit."""
    home = Path(tempfile.mkdtemp(prefix="ibs", dir="/tmp"))
    values = {**TEST_DEFAULTS, "IB_PORT": str(free_port()), **(env or {})}
    write_env_file(home / ".env", values)
    (home / ".venv").symlink_to(REPO / ".venv")
    (home / "supervisord.conf").write_text(_config_text(programs))
    clean_env = {
        k: v for k, v in os.environ.items() if k not in values and k not in ("STACK_HOME", "VAR_DIR")
    }
    settings = _settings_for(home)
    prepare_var(settings)
    conf = write_supervisord_config(settings, template=home / "supervisord.conf")
    out = open(settings.log_dir / "supervisord.stdout", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "supervisord"), "-n", "-c", str(conf)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**clean_env, "STACK_HOME": str(home)},
        cwd=home,
        umask=0o077,  # what bin/stack gives it: supervisord applies its own umask only when it daemonizes
    )
    stack = Stack(home=home, settings=settings, process=proc)
    try:
        wait_for(
            "supervisord up", lambda: stack.rpc().supervisor.getState()["statename"] == "RUNNING", timeout
        )
        for program in programs:
            stack.wait_state(program, "RUNNING", timeout)
        yield stack
    finally:
        _stop(stack)
        out.close()
        if os.environ.get("KEEP_STACK_HOME"):
            print(f"stack home kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """A stack's .env, private like `make setup` makes it (the stack refuses to start with an open one)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(f"{k}={v}\n" for k, v in values.items()))


def _settings_for(home: Path) -> Settings:
    """The stack's settings as its programs see them: its .env, not this process's STACK_HOME or VAR_DIR."""
    saved = {k: os.environ.pop(k) for k in ("STACK_HOME", "VAR_DIR") if k in os.environ}
    os.environ["STACK_HOME"] = str(home)
    try:
        return load_settings(home / ".env")  # the settings keep this home after STACK_HOME is restored
    finally:
        os.environ.pop("STACK_HOME", None)
        os.environ.update(saved)
