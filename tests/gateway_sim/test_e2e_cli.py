"""The simulator as a program: `python -m procs.gateway_sim` (flags, settings, refusals, replay files) and
`bin/gateway-sim-ctl` (finds it by port, over the control socket)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from ib_async import Contract, Stock, TickByTickAllLast

from tests.gateway_sim.sim_harness import connect
from tests.support.sim import REPO, VENV_PYTHON, RunningSim, free_port, running_sim

pytestmark = pytest.mark.timeout(60)
CTL = REPO / "bin" / "gateway-sim-ctl"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without stack settings, in an empty stack home (no developer .env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IB_", "SIM_", "GATEWAY", "TRADING_"))}
    env.update(STACK_HOME=str(home), VAR_DIR=str(home / "var"), PYTHONPATH=str(REPO), **extra)
    return env


def ctl(sim: RunningSim, *argv: str, activated_venv: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if activated_venv:  # as from an activated venv: the shebang's python3 is the venv's
        env["PATH"] = f"{VENV_PYTHON.parent}{os.pathsep}{env.get('PATH', '')}"
    args = [str(CTL), "--port", str(sim.port), "--control-dir", str(sim.control_dir), *argv]
    return subprocess.run(args, capture_output=True, text=True, timeout=30, env=env)


def start_sim(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [str(VENV_PYTHON), "-m", "procs.gateway_sim", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30, env=env)


async def test_ctl_status_shows_the_sessions_of_the_simulator_on_that_port(
    shared_sim: RunningSim, client_id: int
) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        done = ctl(shared_sim, "status")
        assert done.returncode == 0, done.stderr
        status = json.loads(done.stdout)
        assert status["port"] == shared_sim.port and status["server_version"] == 178
        assert client_id in [s["client_id"] for s in status["sessions"]]
        assert {"sim_time", "open_orders", "faults", "listening"} <= status.keys()
    finally:
        client.ib.disconnect()


def test_ctl_refuses_a_bad_command_in_one_line(shared_sim: RunningSim) -> None:
    done = ctl(shared_sim, "silent", "sideways")
    assert done.returncode == 2  # a usage error
    assert done.stderr.strip().startswith("gateway-sim-ctl: usage: silent on|off")
    assert ctl(shared_sim, "frobnicate").returncode == 2


def test_ctl_says_so_when_no_simulator_answers(tmp_path: Path) -> None:
    args = [str(CTL), "--port", str(free_port()), "--control-dir", str(tmp_path), "status"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert done.returncode == 69
    assert "no simulator answers" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_ctl_drives_a_fault_and_status_reports_it(shared_sim: RunningSim) -> None:
    assert ctl(shared_sim, "handshake-delay", "0.25").returncode == 0
    try:
        assert shared_sim.status()["faults"]["handshake_delay"] == 0.25
    finally:
        assert ctl(shared_sim, "handshake-delay", "0").returncode == 0
    assert "handshake_delay" not in shared_sim.status()["faults"]


def test_a_real_gateway_port_is_refused_with_exit_78(tmp_path: Path) -> None:
    done = start_sim(["--port", "4002", "--control-dir", str(tmp_path)], clean_env(tmp_path))
    assert done.returncode == 78
    assert "--port 4002" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_an_unknown_clock_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = start_sim(["--port", str(free_port()), "--clock", "lunar"], clean_env(tmp_path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--clock 'lunar'" in lines[0] and "session or wall" in lines[0]


async def test_wall_clock_mode_stamps_bars_with_real_time_and_the_market_is_open(
    short_tmp: Path, client_id: int
) -> None:
    """--clock wall: bars and ticks carry the real time (NautilusTrader drops older bars), speed 1, and they trade
    whenever the simulator runs: at night and on weekends a past session's prices are played under today's time."""
    import asyncio
    import time

    with running_sim(speed=1.0, extra_args=["--clock", "wall"]) as sim:
        assert sim.status()["clock"] == "wall"
        client = await connect(sim.port, client_id)
        try:
            [aapl] = await client.ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
            assert isinstance(aapl, Contract)
            bars = client.ib.reqRealTimeBars(aapl, 5, "TRADES", False)
            ticker = client.ib.reqTickByTickData(aapl, "Last")
            deadline = time.monotonic() + 20
            while (not bars or not ticker.tickByTicks) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert bars and ticker.tickByTicks, "no bar or trade tick within 20 s"
            now = time.time()
            assert now - 12 <= bars[-1].time.timestamp() <= now  # the bar that just closed, in real time
            last = ticker.tickByTicks[-1]
            assert isinstance(last, TickByTickAllLast)
            assert bars[-1].volume > 0 and last.size > 0  # the market is open
            assert abs(ticker.tickByTicks[-1].time.timestamp() - now) < 5
        finally:
            client.ib.disconnect()


def test_gateway_ib_setting_means_the_simulator_does_not_start(tmp_path: Path) -> None:
    done = start_sim(["--port", str(free_port())], clean_env(tmp_path, GATEWAY="ib", IB_PORT="4002"))
    assert done.returncode == 0
    assert "GATEWAY=ib: the simulator is not started" in done.stderr


def test_a_bad_replay_file_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    bars.write_text("symbol,time,open,high,low,close,volume\nXYZ,2026-11-20 14:30:00,1,abc,0.5,1.5,100\n")
    done = start_sim(["--port", str(free_port()), "--replay", str(bars)], clean_env(tmp_path))
    assert done.returncode == 78
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bars) in lines[0] and "row 1" in lines[0]


async def test_a_replay_file_drives_its_symbol(short_tmp: Path, client_id: int) -> None:
    bars = short_tmp / "bars.csv"
    rows = [
        (f"2026-11-20 14:{30 + m}:00", 50 + m, 50.5 + m, 49.5 + m, 50.25 + m, 1000 + m) for m in range(10)
    ]
    bars.write_text(
        "symbol,time,open,high,low,close,volume\n"
        + "".join(f"ZREP,{t},{o},{h},{lo},{c},{v}\n" for t, o, h, lo, c, v in rows)
    )
    with running_sim(extra_args=["--replay", str(bars), "--start", "2026-11-20T14:45:00Z"]) as sim:
        client = await connect(sim.port, client_id)
        try:
            [contract] = await client.ib.qualifyContractsAsync(Stock("ZREP", "SMART", "USD"))
            assert isinstance(contract, Stock) and contract.conId >= 800_000_000
            end = "20261120 14:40:00 UTC"
            history = await client.ib.reqHistoricalDataAsync(contract, end, "600 S", "1 min", "TRADES", False)
            got = [(b.open, b.high, b.low, b.close, b.volume) for b in history]
            assert got == [(o, h, lo, c, float(v)) for _, o, h, lo, c, v in rows]
        finally:
            client.ib.disconnect()
    assert sim.process.returncode == 0  # SIGTERM: a clean stop
    assert not sim.control_path.exists()


def test_the_in_process_simulator_serves_the_same_control_socket(short_tmp: Path) -> None:
    from procs.gateway_sim.control import control_path, request
    from procs.gateway_sim.inprocess import GatewaySim

    with GatewaySim(control_dir=short_tmp) as sim:
        path = control_path(short_tmp, sim.port)
        assert request(path, ["pacing", "off"]) == {"ok": True, "pacing": False}
        assert request(path, ["status"])["faults"] == {"pacing": "off"}
    assert not path.exists()


def test_a_taken_port_exits_75_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = start_sim(["--port", str(port), "--control-dir", str(tmp_path)], clean_env(tmp_path))
    assert done.returncode == 75  # EX_TEMPFAIL: supervisord tries again
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0], done.stderr


def test_on_the_harness_sighup_exits_75_and_the_simulator_takes_no_bus_socket(short_tmp: Path) -> None:
    """The shared harness (shared/service.py) runs it: SIGHUP stops it to be started again, its log says it
    stopped; it is silent in the registry, so no heartbeat file, and it binds nothing of the stack's bus."""
    with running_sim() as sim:
        stack_run_dir = sim.control_dir.parent / "var" / "run"  # running_sim's VAR_DIR: where a bus would be
        assert stack_run_dir.is_dir() and list(stack_run_dir.iterdir()) == []  # no socket, lock or heartbeat
        assert [p.name for p in sim.control_dir.iterdir()] == [sim.control_path.name]
        os.kill(sim.pid, signal.SIGHUP)
        assert sim.process.wait(10) == 75
        assert "gateway_sim stopped" in sim.log_path.read_text()
        assert not sim.control_path.exists()
