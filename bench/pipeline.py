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
import asyncio
import os
import signal
import socket
import sqlite3
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

from bench.common import percentile, stop_process  # noqa: E402
from shared.config import Settings  # noqa: E402

PYTHON = ROOT / ".venv" / "bin" / "python"
BRIDGE_CLIENT_ID, FLOOR_CLIENT_ID, PEER_CLIENT_ID = 1, 99, 98  # 98: tests/nautilus/node.py's CLIENT_ID
FLOOR_FIRST_ORDER_ID = 50_000_000
ALL_SYMBOLS = "AAPL,MSFT,SPY,QQQ,NVDA,AMZN,GOOGL,META,TSLA,IWM,JPM,V,JNJ,XOM,WMT,PG,MA,HD,KO,PEP".split(",")
BAR_NS = 5 * 10**9
STARTUP_BARS = 3  # trading bars left out of the steady-state line (see steady())
PROGRAMS = ("bridge", "features", "strategy", "executor")
HOPS = (
    "simulator -> bridge publishes the bar",
    "bridge -> features publishes the vector",
    "features -> strategy publishes the target",
    "strategy -> executor writes the order",
    "executor -> bridge -> simulator reads placeOrder",
)


# ---------------------------------------------------------------------------------- the traced simulator


def run_traced_sim(argv: list[str]) -> int:
    """The real simulator, with bar writes and placeOrder arrivals stamped into $PIPELINE_TRACE."""
    import atexit

    from procs.gateway_sim import server as sim_server
    from procs.gateway_sim import streams
    from procs.gateway_sim.app import run as main
    from procs.gateway_sim.session import Session
    from procs.gateway_sim.wire_requests import parse_place_order

    trace = open(os.environ["PIPELINE_TRACE"], "a", buffering=1 << 16)  # noqa: SIM115 - closed at exit
    atexit.register(trace.close)
    pending: dict[Any, list[tuple[str, int]]] = {}
    build_bars, send, place = streams._bars, Session.send, sim_server.HANDLERS[3]

    def traced_bars(server: Any, session: Any, now: int, out: list[bytes]) -> None:
        before = {rid: sub.next_start_ns for rid, sub in session.subs.bars.items()}
        build_bars(server, session, now, out)
        for rid, sub in session.subs.bars.items():
            for start in range(before.get(rid, sub.next_start_ns), sub.next_start_ns, BAR_NS):
                pending.setdefault(session, []).append((sub.contract.symbol, start))

    def traced_send(self: Any, data: bytes, count: int = 1) -> None:
        bars = pending.pop(self, None)
        t = time.time_ns()  # just before the write to the socket (the write itself counts as latency)
        send(self, data, count)
        if bars:
            trace.writelines(f"B {self.client_id} {sym} {start} {t}\n" for sym, start in bars)

    def traced_place(session: Any, fields: list[str]) -> None:
        t = time.time_ns()  # the message has just been read and decoded
        try:
            req = parse_place_order(fields)
            trace.write(f"O {session.client_id} {req.order_ref or '-'} {req.contract.symbol} {t}\n")
        except Exception:  # an order the simulator will refuse is still the simulator's business
            pass
        place(session, fields)

    streams._bars = traced_bars
    Session.send = traced_send  # type: ignore[method-assign]
    sim_server.HANDLERS[3] = traced_place
    return main(argv)


# ---------------------------------------------------------------------------------- the floor client


def run_floor(port: int, symbols: list[str]) -> int:
    """A bare ib_async client: one order per bar received, as fast as it can."""
    import logging

    from ib_async import IB, LimitOrder, Stock

    # silent, as a floor should be: ib_async would print two lines for the cancel of every IOC order
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)

    async def go() -> None:
        ib = IB()
        ib.client.MaxRequests = 0  # no client-side throttle: this is the floor
        await ib.connectAsync("127.0.0.1", port, clientId=FLOOR_CLIENT_ID, timeout=30)
        # the simulator keeps one order-id space for all clients (IB keeps one per client): stay clear of the
        # bridge's ids, or its orders get 103 "Duplicate order id"
        ib.client.updateReqId(FLOOR_FIRST_ORDER_ID)  # type: ignore[no-untyped-call]
        contracts = [Stock(s, "SMART", "USD") for s in symbols]
        await ib.qualifyContractsAsync(*contracts)

        def on_bar(bars: Any, has_new: bool) -> None:
            if has_new:
                ref = f"floor-{bars.contract.symbol}-{int(bars[-1].time.timestamp())}"
                ib.placeOrder(bars.contract, LimitOrder("BUY", 1, 1.00, tif="IOC", orderRef=ref))

        for c in contracts:
            ib.reqRealTimeBars(c, 5, "TRADES", False).updateEvent += on_bar
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        ib.disconnect()

    asyncio.run(go())
    return 0


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
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM orders WHERE decided_on_ns > 0").fetchone()[0])
    finally:
        conn.close()


def start_sim(home: Path, port: int, args: argparse.Namespace, sim_start: str, env: dict[str, str]) -> Any:
    from procs.gateway_sim.control import control_path, request

    sim_args = ["--port", str(port), "--speed", str(args.speed), "--no-pacing", "--start", sim_start]
    sim_args += ["--control-dir", str(home / "run"), "--log-dir", str(home)]
    sim_env = dict(env, PIPELINE_TRACE=str(home / "trace.txt"))
    proc = start([str(PYTHON), __file__, "_sim", *sim_args], sim_env, home / "sim.out")
    wait_for("the simulator", lambda: request(control_path(home / "run", port), ["status"]).get("ok"), 30)
    return proc


def run_floor_alone(args: argparse.Namespace, home: Path, sim_start: str, seconds: float) -> None:
    """Phase 2: a fresh simulator from the same clock start, the floor client alone, for as long as phase 1."""
    port = free_port()
    env = stack_env(home, port, args)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_sim(home, port, args, sim_start, env))
        began = time.monotonic()
        floor_args = ["_floor", "--port", str(port), "--symbols", symbols(args)]
        procs.append(start([str(PYTHON), __file__, *floor_args], env, home / "floor.out"))
        print(f"  floor alone on the same simulated span: {seconds:.0f}s", flush=True)
        while time.monotonic() - began < seconds:
            if procs[-1].poll() is not None:
                raise SystemExit(f"bench: the floor client exited early; logs in {home}")
            time.sleep(1.0)
    finally:
        for proc in reversed(procs):
            stop_process(proc)


def run_peer_alone(args: argparse.Namespace, home: Path, sim_start: str, seconds: float) -> None:
    """Phase 3: a fresh simulator from the same clock start, the NautilusTrader node alone, for as long as phase 1
    (plus its start-up: it loads its instruments before it subscribes)."""
    from procs.gateway_sim.contracts import DEFAULT_CONTRACTS
    from tests.nautilus.venv import NODE_SCRIPT, ensure_nautilus_venv

    python = ensure_nautilus_venv()
    port = free_port()
    env = stack_env(home, port, args)
    ids = ",".join(f"{s}.{DEFAULT_CONTRACTS[s].primary_exchange}" for s in symbols(args).split(","))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_sim(home, port, args, sim_start, env))
        began = time.monotonic()
        node_args = [str(python), str(NODE_SCRIPT), "bench", str(port), "DU1234567", ids]
        procs.append(start(node_args, env, home / "nautilus.out"))
        print(f"  NautilusTrader alone on the same simulated span: {seconds:.0f}s", flush=True)
        while time.monotonic() - began < seconds:
            if procs[-1].poll() is not None:
                raise SystemExit(f"bench: the NautilusTrader node exited early; logs in {home}")
            time.sleep(1.0)
    finally:
        for proc in reversed(procs):
            stop_process(proc)


def peer_latencies(trace: Path) -> dict[tuple[str, int], float]:
    """The peer's tick-to-order by (symbol, bar start): its first order after each bar written to it."""
    last_bar: dict[str, tuple[int, int]] = {}  # symbol -> (bar start, written at) of the last bar it was sent
    out: dict[tuple[str, int], float] = {}
    for line in trace.read_text().splitlines():
        kind, client_text, *rest = line.split()
        if int(client_text) != PEER_CLIENT_ID:
            continue
        if kind == "B":
            last_bar[rest[0]] = (int(rest[1]), int(rest[2]))
        elif kind == "O" and rest[1] in last_bar:
            start_ns, written = last_bar[rest[1]]
            out.setdefault((rest[1], start_ns), (int(rest[2]) - written) / 1e6)
    return out


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


def analyse(trace: Path, ledger: Path, streams: StreamTimes, args: argparse.Namespace) -> None:
    bars: dict[tuple[int, str, int], int] = {}
    place: dict[tuple[str, int], int] = {}  # a pipeline bar: its place in its burst (0 = first)
    received: dict[tuple[int, str], int] = {}
    burst, write_ns = 0, -1
    for line in trace.read_text().splitlines():
        kind, client_text, *rest = line.split()
        if kind == "B":
            bars[(int(client_text), rest[0], int(rest[1]))] = int(rest[2])
            if int(client_text) == BRIDGE_CLIENT_ID:
                burst, write_ns = (burst + 1, write_ns) if int(rest[2]) == write_ns else (0, int(rest[2]))
                place[(rest[0], int(rest[1]))] = burst
        elif kind == "O":
            received.setdefault((int(client_text), rest[0]), int(rest[2]))  # the first arrival counts
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT client_order_id, symbol, decided_on_ns, created_ns FROM orders WHERE decided_on_ns > 0"
    )
    pipeline: dict[tuple[str, int], float] = {}
    hops: dict[str, list[float]] = {name: [] for name in HOPS}
    for coid, symbol, end_ns, created_ns in rows:
        key = (symbol, int(end_ns) - BAR_NS)
        sent, got = bars.get((BRIDGE_CLIENT_ID, *key)), received.get((BRIDGE_CLIENT_ID, coid))
        if sent is None or got is None:
            continue
        pipeline[key] = (got - sent) / 1e6
        stamps = [sent, *(streams.times[k].get(key) for k in ("bar", "feat", "target")), created_ns, got]
        if all(t is not None for t in stamps):
            for name, a, b in zip(HOPS, stamps, stamps[1:], strict=False):
                hops[name].append((b - a) / 1e6)
    conn.close()
    floor_all: dict[tuple[str, int], float] = {}
    for (client, ref), arrived in received.items():
        if client == FLOOR_CLIENT_ID and ref.startswith("floor-"):
            _, sym, start_s = ref.split("-")
            bar_key = (sym, int(start_s) * 10**9)
            written = bars.get((FLOOR_CLIENT_ID, *bar_key))
            if written is not None:
                floor_all[bar_key] = (arrived - written) / 1e6
    floor_same = [floor_all[k] for k in pipeline if k in floor_all]
    report(list(pipeline.values()), floor_same, list(floor_all.values()), args)
    if args.peer == "nautilus":
        peer_report(pipeline, floor_all, peer_latencies(trace))
    steady(pipeline)
    by_place(pipeline, place)
    print("  where the pipeline's time goes (p50 / p99 ms, each hop ends at a publish or a write):")
    for name, values in hops.items():
        if values:
            print(f"    {name:<44} {percentile(values, 0.5):7.2f} / {percentile(values, 0.99):7.2f}")


def peer_report(
    pipeline: dict[tuple[str, int], float],
    floor: dict[tuple[str, int], float],
    peer: dict[tuple[str, int], float],
) -> None:
    same = [k for k in pipeline if k in peer]
    if not same:
        print(
            f"  NautilusTrader: no orders on the pipeline's bars ({len(peer)} on any bar); see nautilus.out"
        )
        return
    p = [pipeline[k] for k in same]
    n = [peer[k] for k in same]
    print(
        f"  NautilusTrader 1.221.0 (same bars):                   n={len(n)}  p50 {percentile(n, 0.5):.2f} ms  "
        f"p99 {percentile(n, 0.99):.2f} ms  max {max(n):.2f} ms"
    )
    print(
        f"  ratio pipeline/NautilusTrader: p50 {percentile(p, 0.5) / percentile(n, 0.5):.1f}x  "
        f"p99 {percentile(p, 0.99) / percentile(n, 0.99):.1f}x"
    )
    both = [k for k in same if k in floor]
    if both:
        f = [floor[k] for k in both]
        m = [peer[k] for k in both]
        print(
            f"  ratio NautilusTrader/floor: p50 {percentile(m, 0.5) / percentile(f, 0.5):.1f}x  "
            f"p99 {percentile(m, 0.99) / percentile(f, 0.99):.1f}x (n={len(both)})"
        )


def steady(pipeline: dict[tuple[str, int], float], skip_bars: int = STARTUP_BARS) -> None:
    """The same figures without the first trading bars: at start-up every symbol opens a position at once and the
    orders wait for IB's 50-messages-per-second window, which start-up (subscriptions, history) has just filled."""
    starts = sorted({start for _, start in pipeline})[:skip_bars]
    rest = [ms for (_, start), ms in pipeline.items() if start not in starts]
    if rest:
        print(
            f"  without the first {skip_bars} trading bars (start-up pacing): n={len(rest)}  "
            f"p50 {percentile(rest, 0.5):.2f} ms  p99 {percentile(rest, 0.99):.2f} ms  max {max(rest):.2f} ms"
        )


def by_place(pipeline: dict[tuple[str, int], float], place: dict[tuple[str, int], int]) -> None:
    """p50 by the bar's place in the simulator's burst: the first bar of a burst waits for nobody."""
    groups: dict[int, list[float]] = {}
    for key, ms in pipeline.items():
        if key in place:
            groups.setdefault(place[key], []).append(ms)
    last = max(groups, default=0)
    shown = sorted({0, last // 4, last // 2, 3 * last // 4, last} & set(groups))
    text = ", ".join(f"#{i + 1} {percentile(groups[i], 0.5):.2f} (n={len(groups[i])})" for i in shown)
    print(f"  p50 ms by the bar's place in the burst of {last + 1}: {text}")


def report(
    pipeline: list[float], floor: list[float], floor_all: list[float], args: argparse.Namespace
) -> None:
    floor_mode = args.floor
    if not pipeline:
        raise SystemExit("bench: no matched orders; see the logs")
    p50, p99 = percentile(pipeline, 0.50), percentile(pipeline, 0.99)
    if not floor:  # --floor none: the pipeline alone (the simulator serves nobody else)
        print(f"tick-to-order latency, pipeline alone (no floor client), {args.symbols} symbols")
        print(
            f"  pipeline: n={len(pipeline)}  p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {max(pipeline):.2f} ms"
        )
        print(f"  targets {'met' if p50 <= 5 and p99 <= 20 else 'NOT met'} (p50 <= 5 ms, p99 <= 20 ms)")
        return
    f50, f99 = percentile(floor, 0.50), percentile(floor, 0.99)
    print(
        f"tick-to-order latency, bar written by the simulator -> placeOrder read by the simulator ({args.symbols} symbols)"
    )
    print(
        f"  pipeline (bridge>features>strategy>executor>bridge): n={len(pipeline)}  p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {max(pipeline):.2f} ms   (targets: p50 <= 5 ms, p99 <= 20 ms)"
    )
    print(
        f"  floor (bare ib_async, same bars, {floor_mode + '):':<12}         n={len(floor)}  p50 {f50:.2f} ms  p99 {f99:.2f} ms  max {max(floor):.2f} ms"
    )
    print(
        f"  floor (every bar it received):                        n={len(floor_all)}  p50 {percentile(floor_all, 0.5):.2f} ms  p99 {percentile(floor_all, 0.99):.2f} ms"
    )
    print(f"  ratio pipeline/floor: p50 {p50 / f50:.1f}x  p99 {p99 / f99:.1f}x")
    verdict = "met" if p50 <= 5 and p99 <= 20 else "NOT met"
    print(f"  targets {verdict}")


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
        analyse(trace, ledger, streams, args)
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
