"""Tick-to-order latency of the whole stack, and the floor of a bare ib_async client, measured by the simulator.

    .venv/bin/python bench/pipeline.py [--orders 1000] [--speed 10] [--max-seconds 300] [--floor alone]
                                       [--symbols 20] [--peer nautilus]

Latency = the simulator writing the 5-second bar that completes a signal to a client's socket -> the
simulator receiving the placeOrder that answers it; both stamps are taken inside the simulator process.

- Pipeline: simulator -> bridge -> features -> strategy -> executor -> bridge -> simulator, every program its
  real self in its own process, 20 symbols. BAR_SECONDS=5, so each 5-second bar closes a strategy bar, and a
  mean-reversion strategy with a tiny entry band flips its targets often. An order is tied to its bar by the bar
  end the executor records with it (orders.decided_on_ns); orders re-decided after a cancel are not counted.
- Floor: a bare ib_async client (its own client id, its client-side throttle off, its logging off) that places
  an order the moment it receives each bar (LMT BUY 1 @ 1.00 IOC: it never fills), its orderRef naming the bar.
  Its figures are taken over the same bars as the pipeline's orders; the ratio is pipeline / floor.
  `--floor alone` (the default): a second phase of the same run, with the pipeline's programs stopped, replays
  the same simulated span (same seed, same clock start, same real duration), so the floor sees the very bars
  the pipeline traded on and neither competes with the other for the 2 cores, as in production, where the
  stack runs alone. `--floor concurrent`: the floor runs beside the pipeline in one phase, both slowed by the
  other (the floor's 20 orders per bar double the simulator's work). `--floor none`: the pipeline alone.
- Peer (`--peer nautilus`): an unmodified NautilusTrader TradingNode (its Interactive Brokers data and execution
  clients; tests/nautilus/node.py in .venv-nautilus, which the bench installs on first use) that places a LMT BUY 1
  @ 1.00 IOC on every 5-second bar it receives, like the floor. A further phase of the same run, alone, over the
  same simulated span; its figures are taken over the same bars as the pipeline's orders, stamped the same way (an
  order is tied to the last bar the simulator wrote to the node for that symbol before the order arrived).
A last line gives the pipeline's figures without its first three trading bars (start-up: every symbol opens a
position at once and waits for the pacing window), for the steady state; the headline figures include them.
Every symbol's bar is written in the same instant, in the same order: the figures by a bar's place in that burst
show how much of the latency is queueing behind the other symbols (`--symbols 2`: nearly none).
The simulator's pacing is off for the run (the floor sends one order per bar, ~40/s). The stamps come from two
functions of the simulator wrapped in its child process for this benchmark; the simulator's code is unchanged.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import stop_process  # noqa: E402
from bench.pipeline_clients import run_floor, run_traced_sim  # noqa: E402
from bench.pipeline_report import (  # noqa: E402
    BAR_NS,
    BRIDGE_CLIENT_ID,
    analyse,
)
from procs.monitor.daybook import read_only  # noqa: E402
from shared.config import Settings  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"
ALL_SYMBOLS = "AAPL,MSFT,SPY,QQQ,NVDA,AMZN,GOOGL,META,TSLA,IWM,JPM,V,JNJ,XOM,WMT,PG,MA,HD,KO,PEP".split(",")
PROGRAMS = ("bridge", "features", "strategy", "executor")


# ---------------------------------------------------------------------------------- the streams, for the breakdown


class StreamTimes:
    """Listens to the bridge's bars, the features' vectors and the strategy's targets; keeps each one's
    publish time (its envelope's ts_ns) by (symbol, bar start)."""

    def __init__(self, endpoints: list[str]) -> None:
        import threading

        self.endpoints = endpoints
        self.times: dict[str, dict[tuple[str, int], int]] = {"bar": {}, "feat": {}, "target": {}}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import msgspec
        import zmq

        from shared.messages import Bar, FeatureVector, Published, TargetPosition

        decoder = msgspec.msgpack.Decoder(Published)
        ctx = zmq.Context()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        for prefix in (b"bar.", b"feat.", b"target."):
            sock.setsockopt(zmq.SUBSCRIBE, prefix)
        for ep in self.endpoints:
            sock.connect(ep)
        while not self._stop.is_set():
            if not sock.poll(200):
                continue
            _, body = sock.recv_multipart()
            msg = decoder.decode(body)
            if isinstance(msg, Bar):
                self.times["bar"][(msg.symbol, msg.start_ns)] = msg.ts_ns
            elif isinstance(msg, FeatureVector):
                self.times["feat"][(msg.symbol, msg.end_ns - BAR_NS)] = msg.ts_ns
            elif isinstance(msg, TargetPosition):
                self.times["target"][(msg.symbol, msg.feature_end_ns - BAR_NS)] = msg.ts_ns
        sock.close()
        ctx.term()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


# ---------------------------------------------------------------------------------- the run


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: timed out waiting for {what}")


def symbols(args: argparse.Namespace) -> str:
    return ",".join(ALL_SYMBOLS[: args.symbols])


def stack_env(home: Path, port: int, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        STACK_HOME=str(home),
        VAR_DIR=str(home / "var"),
        PYTHONPATH=str(ROOT),
        GATEWAY="sim",
        IB_PORT=str(port),
        IB_CLIENT_ID=str(BRIDGE_CLIENT_ID),
        SIM_SPEED=str(args.speed),
        SYMBOLS=symbols(args),
        BAR_SECONDS="5",
        WARMUP_BARS="60",
        STRATEGY="meanrev",
        STRATEGY_PARAMS="entry_z=0.05,rsi_long_max=100,rsi_short_min=0",
        POSITION_NOTIONAL="10000",
        MAX_POSITION_SHARES="100000",
        MAX_POSITION_NOTIONAL="1000000",
        MAX_ORDER_NOTIONAL="1000000",
        MAX_GROSS_EXPOSURE="100000000",
        MAX_OPEN_POSITIONS="100",
        DAILY_LOSS_LIMIT="1000000000",
        MAX_ORDERS_PER_MINUTE="100000",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        BRIDGE_MSGS_PER_SECOND=str(args.bridge_rate),
    )
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()


def counted_orders(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    with read_only(ledger) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM orders WHERE decided_on_ns > 0").fetchone()[0])


def start_sim(home: Path, port: int, args: argparse.Namespace, sim_start: str, env: dict[str, str]) -> Any:
    from procs.gateway_sim.control import control_path, request

    sim_args = ["--port", str(port), "--speed", str(args.speed), "--no-pacing", "--start", sim_start]
    sim_args += ["--control-dir", str(home / "run"), "--log-dir", str(home)]
    sim_env = dict(env, PIPELINE_TRACE=str(home / "trace.txt"))
    proc = start([str(PYTHON), __file__, "_sim", *sim_args], sim_env, home / "sim.out")
    wait_for("the simulator", lambda: request(control_path(home / "run", port), ["status"]).get("ok"), 30)
    return proc


def run_alone(
    args: argparse.Namespace,
    home: Path,
    sim_start: str,
    seconds: float,
    port: int,
    client: list[str],
    who: str,
) -> None:
    """A fresh simulator from the same clock start and one client alone beside it, for `seconds`."""
    env = stack_env(home, port, args)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_sim(home, port, args, sim_start, env))
        began = time.monotonic()
        procs.append(start(client, env, home / f"{who}.out"))
        print(f"  {who} alone on the same simulated span: {seconds:.0f}s", flush=True)
        while time.monotonic() - began < seconds:
            if procs[-1].poll() is not None:
                raise SystemExit(f"bench: {who} exited early; logs in {home}")
            time.sleep(1.0)
    finally:
        for proc in reversed(procs):
            stop_process(proc)


def run_floor_alone(args: argparse.Namespace, home: Path, sim_start: str, seconds: float) -> None:
    """Phase 2: the floor client alone, for as long as phase 1."""
    port = free_port()
    floor = [str(PYTHON), __file__, "_floor", "--port", str(port), "--symbols", symbols(args)]
    run_alone(args, home, sim_start, seconds, port, floor, "floor")


def run_peer_alone(args: argparse.Namespace, home: Path, sim_start: str, seconds: float) -> None:
    """Phase 3: the NautilusTrader node alone, for as long as phase 1 (plus its start-up: it loads its instruments
    before it subscribes)."""
    from procs.gateway_sim.contracts import DEFAULT_CONTRACTS
    from tests.nautilus.venv import NODE_SCRIPT, ensure_nautilus_venv

    python = ensure_nautilus_venv()
    port = free_port()
    ids = ",".join(f"{s}.{DEFAULT_CONTRACTS[s].primary_exchange}" for s in symbols(args).split(","))
    node = [str(python), str(NODE_SCRIPT), "bench", str(port), "DU1234567", ids]
    run_alone(args, home, sim_start, seconds, port, node, "nautilus")


def run(args: argparse.Namespace, home: Path, sim_start: str) -> tuple[Path, Path, StreamTimes, float]:
    from shared.bus import pub_endpoint, req_endpoint, request_once
    from shared.config import load_settings
    from shared.messages import HealthRequest

    port = free_port()
    env = stack_env(home, port, args)
    trace = home / "trace.txt"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_sim(home, port, args, sim_start, env))
        sim_began = time.monotonic()
        for program in PROGRAMS:
            procs.append(start([str(PYTHON), "-m", f"procs.{program}"], env, home / f"{program}.out"))
        os.environ.update(STACK_HOME=str(home), VAR_DIR=str(home / "var"), IB_PORT=str(port))
        settings = load_settings()
        bridge = req_endpoint(settings, "bridge")
        streams = StreamTimes([pub_endpoint(settings, p) for p in ("bridge", "features", "strategy")])
        wait_for(
            "the bridge READY",
            lambda: request_once(bridge, HealthRequest(), 1.0).result["state"] == "READY",
            60,
        )
        if args.floor == "concurrent":
            floor_args = ["_floor", "--port", str(port), "--symbols", symbols(args)]
            procs.append(start([str(PYTHON), __file__, *floor_args], env, home / "floor.out"))
        ledger = home / "var" / "data" / "ledger.sqlite"
        began, last_report = time.monotonic(), 0.0
        while (n := counted_orders(ledger)) < args.orders:
            if time.monotonic() - began > args.max_seconds:
                print(f"bench: stopped after {args.max_seconds:g}s with {n} orders", file=sys.stderr)
                break
            if time.monotonic() - last_report > 15:
                print(f"  ... {n} orders after {time.monotonic() - began:.0f}s", flush=True)
                last_report = time.monotonic()
            dead = [p.args for p in procs if p.poll() is not None]
            if dead:
                raise SystemExit(f"bench: a program exited early: {dead}; logs in {home}")
            time.sleep(1.0)
        streams.close()
        return trace, ledger, streams, time.monotonic() - sim_began
    finally:
        for proc in reversed(procs):  # the simulator last, so its trace is complete
            stop_process(proc)


def main(argv: list[str]) -> int:
    if argv[:1] == ["_sim"]:
        return run_traced_sim(argv[1:])
    if argv[:1] == ["_floor"]:
        p = argparse.ArgumentParser()
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--symbols", required=True)
        a = p.parse_args(argv[1:])
        return run_floor(a.port, a.symbols.split(","))
    p = argparse.ArgumentParser(prog="bench/pipeline.py", description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=1000, help="pipeline orders to measure (default 1000)")
    p.add_argument("--speed", type=float, default=10.0, help="simulated clock speed (default 10)")
    p.add_argument("--max-seconds", type=float, default=300.0, help="give up after this long (default 300)")
    p.add_argument(
        "--bridge-rate",
        type=float,
        default=Settings.model_fields["bridge_msgs_per_second"].default,
        help="BRIDGE_MSGS_PER_SECOND: at most this many messages in any 1.05 s window (default: the stack's)",
    )
    p.add_argument(
        "--symbols",
        type=int,
        default=len(ALL_SYMBOLS),
        choices=range(1, len(ALL_SYMBOLS) + 1),
        metavar=f"1..{len(ALL_SYMBOLS)}",
        help=f"symbols traded (default {len(ALL_SYMBOLS)}): fewer means less queueing in each bar's burst",
    )
    p.add_argument("--keep", action="store_true", help="keep the run's directory (logs, trace, ledger)")
    p.add_argument(
        "--floor",
        choices=("alone", "concurrent", "none"),
        default="alone",
        help="the floor client in a second phase over the same bars (default), beside the pipeline, or not at all",
    )
    p.add_argument(
        "--peer",
        choices=("none", "nautilus"),
        default="none",
        help="nautilus: a further phase with an unmodified NautilusTrader node on the same bars (installs it once)",
    )
    args = p.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="ibpipe", dir="/tmp"))
    started = time.monotonic()
    from procs.gateway_sim.market_hours import default_sim_start

    sim_start = default_sim_start(datetime.now(UTC)).isoformat()  # both phases: the same simulated span
    try:
        trace, ledger, streams, seconds = run(args, home, sim_start)
        if args.floor == "alone":
            run_floor_alone(args, home, sim_start, seconds + 2.0)
        if args.peer == "nautilus":
            run_peer_alone(args, home, sim_start, seconds + 8.0)
        analyse(trace, ledger, streams.times, args)
        if args.keep:  # every stream's publish times, for a closer look at one burst
            with open(home / "streams.txt", "w") as out:
                for kind, times in streams.times.items():
                    out.writelines(f"{kind} {sym} {start} {ts}\n" for (sym, start), ts in times.items())
    finally:
        print(f"  (run took {time.monotonic() - started:.0f}s; files in {home})" if args.keep else "")
        if not args.keep:
            import shutil

            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
