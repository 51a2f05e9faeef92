"""Test kit for the watchdog's integration tests: a real supervisord running stand-in programs and the real
watchdog in a short temporary home, a loopback listener standing in for the Gateway port, an alert tap.

Everything started here is stopped by pid at exit (frozen programs are continued first so they can stop);
nothing here signals a process it did not start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import psutil
import zmq

from shared.messages import Alert, Published
from shared.supervisor import supervisor_rpc
from tests.support.stack import wait_for, write_env_file

REPO = Path(__file__).resolve().parents[3]
VENV = REPO / ".venv" / "bin"
HELPERS = Path(__file__).resolve().parent / "helpers"
CLIENT = f"{VENV / 'python'} {HELPERS / 'client_program.py'}"
WATCHDOG = f"{VENV / 'python'} -m procs.watchdog"

# fast settings: a scan every 0.5 s, heartbeats every 0.3 s
FAST = {
    "HEARTBEAT_SECONDS": "0.3",
    "WATCHDOG_SCAN_SECONDS": "0.5",
    "HEARTBEAT_BUDGET_SECONDS": "4",
    "BRIDGE_CONNECT_BUDGET_SECONDS": "30",
    "WATCHDOG_MAX_RESTARTS": "3",
    "LOG_LEVEL": "DEBUG",
}

_CONF = """\
[unix_http_server]
file = %(here)s/var/run/supervisor.sock
chmod = 0700

[supervisord]
logfile = %(here)s/var/log/supervisord.log
pidfile = %(here)s/var/run/supervisord.pid
childlogdir = %(here)s/var/log
directory = %(here)s
nodaemon = true
environment = STACK_HOME="%(here)s",PYTHONPATH="{repo}",PYTHONUNBUFFERED="1"

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
"""

_PROGRAM = """
[program:{name}]
command = {command}
directory = %(here)s
autorestart = unexpected
startsecs = {startsecs}
exitcodes = 0,78
stopsignal = TERM
stopwaitsecs = 3
stopasgroup = true
killasgroup = true
redirect_stderr = true
stdout_logfile = %(here)s/var/log/{name}.out
"""


@dataclass
class Supervised:
    """A running supervisord in `home`, its programs, and every pid it has been seen to run."""

    home: Path
    process: subprocess.Popen[bytes]
    seen: set[int] = field(default_factory=set)

    @property
    def run_dir(self) -> Path:
        return self.home / "var" / "run"

    def rpc(self) -> Any:
        return supervisor_rpc(self.run_dir / "supervisor.sock", 5.0).supervisor

    def info(self, program: str) -> dict[str, Any]:
        info: dict[str, Any] = self.rpc().getProcessInfo(program)
        if info.get("pid"):
            self.seen.add(int(info["pid"]))
        return info

    def pid(self, program: str) -> int:
        return int(
            wait_for(
                f"{program} RUNNING",
                lambda: (i := self.info(program))["statename"] == "RUNNING" and i["pid"],
                30,
            )
        )

    def output(self, program: str) -> str:
        path = self.home / "var" / "log" / f"{program}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def watchdog_log(self) -> str:
        path = self.home / "var" / "log" / "watchdog.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def watchdog_detail(self) -> dict[str, Any]:
        return watchdog_detail(self.run_dir)


def watchdog_detail(run_dir: Path) -> dict[str, Any]:
    """The detail of the watchdog's last heartbeat (last scan, counts, actions), from its heartbeat file."""
    raw = (run_dir / "heartbeat-watchdog.json").read_bytes()
    return dict(msgspec.json.decode(raw)["detail"])


@contextlib.contextmanager
def supervised(
    programs: Mapping[str, str], env: Mapping[str, str], startsecs: int = 0
) -> Iterator[Supervised]:
    """supervisord running `programs` (name -> command) with `.env` = FAST | env; all stopped at exit."""
    home = Path(tempfile.mkdtemp(prefix="ibw", dir="/tmp"))
    for sub in ("run", "log", "data"):
        (home / "var" / sub).mkdir(parents=True, mode=0o700)
    write_env_file(home / ".env", {**FAST, **env})
    conf = _CONF.format(repo=REPO) + "".join(
        _PROGRAM.format(name=n, command=c, startsecs=startsecs) for n, c in programs.items()
    )
    (home / "supervisord.conf").write_text(conf)
    clean = {k: v for k, v in os.environ.items() if k not in ("STACK_HOME", "VAR_DIR") and k not in env}
    proc = subprocess.Popen(
        [str(VENV / "supervisord"), "-n", "-c", str(home / "supervisord.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean,
        cwd=home,
    )
    sup = Supervised(home, proc)
    try:
        wait_for("supervisord up", lambda: sup.rpc().getState()["statename"] == "RUNNING", 20)
        for name in programs:
            sup.pid(name)
        yield sup
    finally:
        _stop(sup)
        if not os.environ.get("KEEP_STACK_HOME"):
            shutil.rmtree(home, ignore_errors=True)


def _stop(sup: Supervised) -> None:
    with contextlib.suppress(Exception):
        for info in sup.rpc().getAllProcessInfo():
            if info.get("pid"):
                sup.seen.add(int(info["pid"]))
    for pid in sup.seen:  # a frozen program cannot act on SIGTERM; only pids our supervisord ran
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    if sup.process.poll() is None:
        sup.process.terminate()
    try:
        sup.process.wait(20)
    except subprocess.TimeoutExpired:
        sup.process.kill()
        sup.process.wait()
    leftovers = []
    for pid in sup.seen:
        with contextlib.suppress(psutil.Error):
            leftovers.append(psutil.Process(pid))
    for p in leftovers:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(leftovers, timeout=5)


class Listener:
    """A loopback listener standing in for the Gateway port (dual-stack, like Java's): accepts and holds."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.sock.bind(("::ffff:127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []

    def accept_all(self) -> int:
        with contextlib.suppress(TimeoutError):
            while True:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)
        return len(self.accepted)

    def close_sessions(self) -> None:
        """Close our end of every session: the clients that do not read are left in CLOSE_WAIT."""
        for conn in self.accepted:
            conn.close()
        self.accepted.clear()

    def close(self) -> None:
        self.close_sessions()
        self.sock.close()


class AlertTap:
    """Collects every Alert the watchdog publishes, from a background thread (plain zmq SUB).

    Returns once connected to the watchdog: a report it makes once (a stranger's socket) is lost to a subscriber
    still joining, and on a loaded machine the join can take longer than a scan."""

    def __init__(self, endpoint: str, timeout: float = 20.0) -> None:
        self.alerts: list[Alert] = []
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SUBSCRIBE, b"alert")
        monitor = self._sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self._sock.connect(endpoint)
        # the subscription goes out with the handshake, well before the watchdog's next scan
        joined = monitor.poll(int(timeout * 1000))
        self._sock.disable_monitor()
        monitor.close()
        if not joined:
            self._sock.close()
            self._ctx.term()
            raise AssertionError(f"the watchdog's {endpoint} did not accept a subscriber in {timeout:g} s")
        self._stop = threading.Event()
        self._decoder = msgspec.msgpack.Decoder(Published)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._sock.poll(100):
                _, body = self._sock.recv_multipart()
                msg = self._decoder.decode(body)
                if isinstance(msg, Alert):
                    self.alerts.append(msg)

    def codes(self) -> list[str]:
        return [a.code for a in self.alerts]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        self._ctx.term()


def start_unsupervised(args: list[str], home: Path) -> subprocess.Popen[bytes]:
    """A process of ours that no supervisord runs (its files go to `home`)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "STACK_HOME": str(home), "VAR_DIR": str(home / "var")}
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=env)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
