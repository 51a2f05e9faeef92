"""The gateway simulator as a real subprocess for multi-process tests: `with running_sim() as sim: ...`.

Stable API for every team (bridge, watchdog, executor):

    running_sim(port=None, speed=60.0, extra_args=(), control_dir=None, account=None, startup_timeout=20.0)
        -> context manager yielding a RunningSim
    RunningSim.port          the API port on 127.0.0.1 (a free one when port=None)
    RunningSim.control_dir   where its control socket lives (gateway-sim-<port>.ctl)
    RunningSim.pid           the simulator's pid (it stands in for the Gateway: never reap it in a watchdog test)
    RunningSim.log_path      its log file (printed when it fails to start)
    RunningSim.ctl(*argv)    one control command -> dict, e.g. sim.ctl("silent", "on"), sim.ctl("error", "1100");
                             raises SimCommandError when the simulator refuses the command
    RunningSim.status()      sim.ctl("status")

Readiness is the control socket answering `status`, never a connection to the API port. On exit the process is
terminated, then killed, by its pid; the temporary directory it created is removed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
DEFAULT_ACCOUNT = "DU1234567"


class SimCommandError(Exception):
    """The simulator answered a control command with ok=false; str() is its one-line reason."""


def free_port() -> int:
    """A free loopback port: bind to port 0 and let the kernel choose (no connection is ever made)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningSim:
    port: int
    control_dir: Path
    pid: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def control_path(self) -> Path:
        return self.control_dir / f"gateway-sim-{self.port}.ctl"

    def ctl(self, *argv: object, timeout: float = 5.0) -> dict[str, Any]:
        from procs.gateway_sim.control import request

        answer = request(self.control_path, [str(a) for a in argv], timeout=timeout)
        if not answer.get("ok"):
            raise SimCommandError(str(answer.get("error")))
        return answer

    def status(self) -> dict[str, Any]:
        return self.ctl("status")


def _child_env(port: int, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # Settings must load and agree with a simulator on this port, whatever the caller's environment says.
    env.update(GATEWAY="sim", IB_PORT=str(port), TRADING_MODE="paper", VAR_DIR=str(home / "var"))
    if not env.get("IB_ACCOUNT", "").startswith(("DU", "DF")):
        env["IB_ACCOUNT"] = DEFAULT_ACCOUNT
    return env


@contextmanager
def running_sim(
    port: int | None = None,
    speed: float = 60.0,
    extra_args: Sequence[str] = (),
    control_dir: Path | str | None = None,
    account: str | None = None,
    startup_timeout: float = 20.0,
) -> Iterator[RunningSim]:
    """Start `python -m procs.gateway_sim` on 127.0.0.1 and yield it once its control socket answers."""
    home = Path(tempfile.mkdtemp(prefix="ibsim", dir="/tmp"))
    port = port or free_port()
    ctl_dir = Path(control_dir) if control_dir is not None else home / "run"
    log_path = home / "gateway_sim.log"
    args = [str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable), "-m", "procs.gateway_sim"]
    args += [
        "--port",
        str(port),
        "--speed",
        str(speed),
        "--control-dir",
        str(ctl_dir),
        "--log-dir",
        str(home),
    ]
    if account is not None:
        args += ["--account", account]
    args += list(extra_args)
    with open(home / "output.txt", "wb") as output:
        try:
            proc = subprocess.Popen(
                args, cwd=REPO, env=_child_env(port, home), stdout=output, stderr=subprocess.STDOUT
            )
        except BaseException:
            shutil.rmtree(home, ignore_errors=True)
            raise
    sim = RunningSim(port=port, control_dir=ctl_dir, pid=proc.pid, log_path=log_path, process=proc)
    try:
        _wait_until_answering(sim, home, startup_timeout)
        yield sim
    finally:
        _stop(proc)
        shutil.rmtree(home, ignore_errors=True)


def _wait_until_answering(sim: RunningSim, home: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sim.process.poll() is not None:
            raise RuntimeError(f"gateway simulator exited with {sim.process.returncode}: {_tail(home)}")
        if sim.control_path.exists():
            try:
                sim.status()
                return
            except (OSError, SimCommandError):
                pass
        time.sleep(0.05)
    raise TimeoutError(
        f"gateway simulator did not answer on {sim.control_path} within {timeout} s: {_tail(home)}"
    )


def _tail(home: Path) -> str:
    try:
        return (home / "output.txt").read_text(errors="replace")[-2000:].strip() or "(no output)"
    except OSError:
        return "(no output)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
