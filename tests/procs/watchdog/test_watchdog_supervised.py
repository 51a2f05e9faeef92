"""The real watchdog under a real supervisord, with real sockets on a loopback port standing in for the Gateway's.

One stack for the whole module (it runs while the tests look at it):
- features: a Python program of ours that holds a client socket it never reads -> CLOSE_WAIT -> restarted;
- executor: a Java program of ours holding the same kind of socket -> never signalled (where no JDK is
  installed, a stand-in started through a link named `java`: the watchdog knows Java by name and executable);
- an unsupervised Python process holding one -> reported, not killed;
- strategy: a program that freezes itself (SIGSTOP) after each start -> heartbeat rule, then the rate limit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from procs.watchdog.snapshot import take_snapshot
from tests.procs.watchdog.watchkit import (
    CLIENT,
    HELPERS,
    WATCHDOG,
    AlertTap,
    Listener,
    Supervised,
    start_unsupervised,
    stop_process,
    supervised,
)
from tests.support.stack import wait_for

JAVA = shutil.which("java")
JAVAC = shutil.which("javac")


@dataclass
class Scene:
    sup: Supervised
    listener: Listener
    tap: AlertTap
    stranger: subprocess.Popen[bytes]
    first_pid: dict[str, int]


def _java_client(into: Path) -> str:
    """The command of a Java-named client that holds a socket: the real JVM where there is a JDK, else the
    Python stand-in run through a link named `java` (CI machines install no JDK)."""
    if JAVA and JAVAC:
        subprocess.run([JAVAC, "-d", str(into), str(HELPERS / "HoldSocket.java")], check=True, timeout=60)
        return f"{JAVA} -Xmx32m -cp {into} HoldSocket"
    java = into / "java"
    java.symlink_to(Path(sys.executable).resolve())
    return f"{java} {HELPERS / 'hold_socket.py'}"


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    listener = Listener()
    classes = Path(tempfile.mkdtemp(prefix="ibj", dir="/tmp"))
    programs = {
        "features": f"{CLIENT} features --connect {listener.port}",
        "strategy": f"{CLIENT} strategy --freeze-after 0.5",
        "executor": f"{_java_client(classes)} {listener.port}",
        "watchdog": WATCHDOG,
    }
    env = {"IB_PORT": str(listener.port), "HEARTBEAT_BUDGET_SECONDS": "2.5", "WATCHDOG_MAX_RESTARTS": "2"}
    stranger = start_unsupervised(
        [sys.executable, str(HELPERS / "client_program.py"), "stranger", "--connect", str(listener.port)],
        classes,
    )
    try:
        with supervised(programs, env) as sup:
            tap = AlertTap(f"ipc://{sup.run_dir / 'watchdog.pub'}")
            try:
                first = {name: sup.pid(name) for name in programs}
                wait_for("every client connected", lambda: listener.accept_all() >= len(programs) - 1, 20)
                listener.close_sessions()  # from here on, every client that does not read is in CLOSE_WAIT
                yield Scene(sup, listener, tap, stranger, first)
            finally:
                tap.close()
    finally:
        stop_process(stranger)
        listener.close()
        shutil.rmtree(classes, ignore_errors=True)


def _actions(scene: Scene, program: str) -> list[dict[str, object]]:
    return [a for a in scene.sup.watchdog_detail()["actions"] if a["program"] == program]


def test_our_python_program_in_client_close_wait_is_restarted_through_supervisord(scene: Scene) -> None:
    old = scene.first_pid["features"]
    wait_for(
        "features restarted with a new pid", lambda: scene.sup.info("features")["pid"] not in (0, old), 20
    )
    assert not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE
    [action] = wait_for("the restart in the watchdog's heartbeat", lambda: _actions(scene, "features"), 5)
    assert action["rule"] == "client-close-wait" and action["outcome"] == "restarted through supervisord"
    assert action["pid"] == old
    log = scene.sup.watchdog_log()
    assert "watchdog.restart rule=client-close-wait target=features pid=" in log and "scans_seen=2" in log


def test_an_unsupervised_python_process_in_close_wait_is_reported_and_left_alone(scene: Scene) -> None:
    pid = scene.stranger.pid
    reported = wait_for(
        "the stranger reported",
        lambda: [
            a for a in scene.tap.alerts if a.code == "watchdog.not-ours" and a.evidence.get("pid") == pid
        ],
        20,
    )
    assert "stop it yourself" in reported[0].remedy
    time.sleep(1.5)  # three more scans
    assert scene.stranger.poll() is None and psutil.Process(pid).status() != psutil.STATUS_STOPPED
    snap = take_snapshot(scene.listener.port, [pid])
    assert any(cw.pid == pid and cw.side == "client" for cw in snap.close_waits), "still holding its socket"
    assert len([a for a in scene.tap.alerts if a.evidence.get("pid") == pid]) == 1, (
        "reported once, not every scan"
    )


def test_a_supervised_java_program_in_close_wait_is_never_signalled(scene: Scene) -> None:
    pid = scene.first_pid["executor"]
    wait_for("the Java client reported", lambda: "watchdog.never-gateway" in scene.tap.codes(), 20)
    time.sleep(1.5)
    info = scene.sup.info("executor")
    assert info["statename"] == "RUNNING" and info["pid"] == pid, "same process, never restarted"
    assert psutil.Process(pid).status() not in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE)
    assert "SIGNALLED" not in scene.sup.output("executor")
    snap = take_snapshot(scene.listener.port, [pid])
    assert any(cw.pid == pid and cw.side == "client" for cw in snap.close_waits)
    assert _actions(scene, "executor") == []
    # it never heartbeats either: the heartbeat rule reports it and leaves it alone
    assert any(a.code == "watchdog.never-gateway" and "hung executor" in a.message for a in scene.tap.alerts)


def test_a_frozen_program_is_restarted_by_the_heartbeat_rule_until_the_rate_limit(scene: Scene) -> None:
    first = scene.first_pid["strategy"]
    wait_for("strategy restarted", lambda: scene.sup.info("strategy")["pid"] not in (0, first), 20)
    alert = wait_for(
        "the rate-limit alert",
        lambda: [a for a in scene.tap.alerts if a.code == "watchdog.rate-limit"],
        30,
    )[0]
    assert "strategy" in alert.message and "supervisorctl restart strategy" in alert.remedy
    actions = _actions(scene, "strategy")
    assert [a["rule"] for a in actions] == ["heartbeat", "heartbeat"]
    assert all(a["outcome"] == "restarted through supervisord" for a in actions)
    assert actions[0]["pid"] == first
    hung = scene.sup.info("strategy")["pid"]
    time.sleep(3.0)  # past its budget again, six scans: hands off
    assert scene.sup.info("strategy")["pid"] == hung
    assert psutil.Process(hung).status() == psutil.STATUS_STOPPED, "left as it is, frozen"
    assert scene.tap.codes().count("watchdog.rate-limit") == 1
    assert scene.sup.watchdog_detail()["handed_off"] == ["strategy"]
