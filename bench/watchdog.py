"""Watchdog benchmarks: one scan with 5,000 TCP sockets open, CLOSE_WAIT-to-restarted latency, gateway-health time.

Run from the repository root: `.venv/bin/python bench/watchdog.py` (about a minute). It opens loopback sockets,
then runs the real supervisord.conf (tests/support/stack.py) with the simulator, the bridge and the watchdog in
a temporary directory, and stops everything it started by pid. It never connects to a real Gateway port.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import msgspec  # noqa: E402
import psutil  # noqa: E402

from procs.gateway_sim.control import control_path, request  # noqa: E402
from procs.watchdog.snapshot import take_snapshot  # noqa: E402
from shared.bus import RequestTimeout, request_once  # noqa: E402
from shared.messages import HealthReport, HealthRequest  # noqa: E402
from tests.procs.watchdog.watchkit import Listener, watchdog_detail  # noqa: E402
from tests.support.stack import Stack, running_stack, wait_for  # noqa: E402

SOCKETS = 5_000
SCAN_TARGET_MS = 50.0
HEALTH_TARGET_S = 1.0


def _median_ms(fn: Callable[[], object], runs: int = 30) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def bench_scan() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * SOCKETS + 1000)), hard))
    gateway, other = Listener(), Listener()
    other.sock.listen(4096)
    programs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(5)]
    pids = [p.pid for p in programs]
    held: list[socket.socket] = []
    try:
        session = socket.create_connection(("127.0.0.1", gateway.port))  # the bridge's live session
        gateway.accept_all()
        for _ in range(SOCKETS // 2):
            held.append(socket.create_connection(("127.0.0.1", other.port)))
            held.append(other.sock.accept()[0])
        total = take_snapshot(gateway.port).tcp_sockets
        quiet = _median_ms(lambda: take_snapshot(gateway.port, pids))
        baseline = _median_ms(lambda: psutil.net_connections("tcp"), runs=10)
        zombie = socket.create_connection(("127.0.0.1", gateway.port))
        gateway.accept_all()
        gateway.accepted[-1].close()  # the "Gateway" hangs up: `zombie` is a client-side CLOSE_WAIT
        time.sleep(0.05)
        assert take_snapshot(gateway.port, pids).by_side("client"), "no CLOSE_WAIT to look at"
        busy = _median_ms(lambda: take_snapshot(gateway.port, pids), runs=10)
        print(f"scan with {total} TCP sockets on the machine (target median <= {SCAN_TARGET_MS:g} ms):")
        print(f"  nothing wrong on the Gateway port:   median {quiet[0]:.1f} ms, p90 {quiet[1]:.1f} ms")
        print(f"  one client CLOSE_WAIT (owner search): median {busy[0]:.1f} ms, p90 {busy[1]:.1f} ms")
        print(f"  (psutil.net_connections alone:        median {baseline[0]:.1f} ms)")
        zombie.close()
        session.close()
    finally:
        for s in held:
            s.close()
        gateway.close()
        other.close()
        for p in programs:
            p.kill()
            p.wait()


def _bridge_ready(stack: Stack) -> int:
    """The bridge's pid once its health answer says READY."""

    def ready() -> bool:
        try:
            reply = request_once(
                f"ipc://{stack.settings.run_dir / 'bridge.req'}", HealthRequest(), timeout=1.0
            )
        except RequestTimeout:
            return False
        return reply.ok and msgspec.convert(reply.result, type=HealthReport).state == "READY"

    wait_for("bridge READY", ready, 60)
    return int(stack.info("bridge")["pid"])


def bench_stack(trials: int = 3) -> None:
    """The real supervisord.conf (bridge startsecs=2) with production intervals: scans every 5 s."""
    programs = ("gateway_sim", "bridge", "watchdog")
    env = {"WATCHDOG_SCAN_SECONDS": "5", "HEARTBEAT_SECONDS": "2", "HEARTBEAT_BUDGET_SECONDS": "20"}
    scan, startsecs = 5.0, 2
    with running_stack(env | {"LOG_LEVEL": "INFO"}, programs=programs) as stack:
        rpc = stack.rpc().supervisor
        for info in rpc.getAllProcessInfo():  # this stack is only these programs: the others are not STOPPED
            if info["name"] not in programs:
                rpc.removeProcessGroup(info["group"])
        _bridge_ready(stack)
        wait_for(
            "the watchdog's first scan",
            lambda: watchdog_detail(stack.settings.run_dir).get("last_scan_ns"),
            15,
        )
        walls, codes = [], set()
        for _ in range(10):
            t0 = time.perf_counter()
            done = subprocess.run(
                [str(REPO / "bin" / "gateway-health")], env=stack.env(), capture_output=True
            )
            walls.append(time.perf_counter() - t0)
            codes.add(done.returncode)
        print(f"gateway-health on a healthy stack ({', '.join(programs)}; target <= {HEALTH_TARGET_S:g} s):")
        print(
            f"  median {statistics.median(walls):.2f} s, max {max(walls):.2f} s over 10 runs, exit codes {codes}"
        )

        target = 2 * scan + startsecs
        print(
            f"client CLOSE_WAIT -> program RUNNING with a new pid (target <= 2 x {scan:g} s + {startsecs} s = {target:g} s):"
        )
        for n in range(trials):
            running, ready = _restart_trial(stack)
            print(f"  trial {n + 1}: RUNNING again after {running:.1f} s, READY after {ready:.1f} s")


def _restart_trial(stack: Stack) -> tuple[float, float]:
    """Freeze the bridge, drop its session; seconds until a new bridge is RUNNING, and READY."""
    port = stack.settings.ib_port
    frozen = _bridge_ready(stack)
    os.kill(frozen, signal.SIGSTOP)  # our own supervised bridge, frozen: it cannot see the FIN
    request(control_path(stack.settings.run_dir, port), ["drop"], timeout=5)
    wait_for("CLOSE_WAIT", lambda: take_snapshot(port, [frozen]).by_side("client"), 5, interval=0.01)
    t0 = time.monotonic()
    wait_for(
        "a new bridge RUNNING",
        lambda: (i := stack.info("bridge"))["statename"] == "RUNNING" and i["pid"] != frozen,
        60,
        interval=0.05,
    )
    running = time.monotonic() - t0
    _bridge_ready(stack)
    return running, time.monotonic() - t0


if __name__ == "__main__":
    bench_scan()
    bench_stack()
