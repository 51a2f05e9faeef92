"""Benchmark the bridge against the gateway simulator (its own process) and print the figures.

    .venv/bin/python bench/bridge.py [--connects 10] [--drops 4] [--outages 2] [--rss-seconds 15]

1. connect-to-READY of the bridge's session vs a bare ib_async IB.connectAsync, same simulator, same run,
   interleaved; medians and their ratio (target <= 1.5);
2. recovery: the simulator drops the session -> bridge READY and bars of every symbol flowing again, median
   (target <= 1.5 s after the simulator accepts again); also after a 2 s outage (listen off, drop, listen on);
3. bus: the bridge's Publisher -> a shared.bus Subscriber in another process over ipc: messages/s
   (target >= 100,000) and one-way latency at 1,000 messages/s, p50/p99 (target p99 <= 1 ms);
4. resident memory of the bridge program (`python -m procs.bridge`, 5 symbols) after --rss-seconds of
   streaming (target <= 150 MB).
The simulator runs at 60x, so 5-second bars arrive every 83 ms and "bars flowing" is measurable.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile, stop_process  # noqa: E402

HOME = Path(tempfile.mkdtemp(prefix="ibbench", dir="/tmp"))
atexit.register(shutil.rmtree, HOME, True)  # each process (the subscriber child too) removes its own
os.environ.update(STACK_HOME=str(HOME), VAR_DIR=str(HOME / "var"))

import msgspec  # noqa: E402
import psutil  # noqa: E402
from ib_async import IB  # noqa: E402

from procs.bridge.session import GatewaySession, Listener  # noqa: E402
from procs.bridge.states import Status  # noqa: E402
from procs.bridge.subscriptions import SubscriptionSpec  # noqa: E402
from shared.bus import Publisher, Subscriber, new_context, req_endpoint, request_once  # noqa: E402
from shared.config import Settings, load_settings  # noqa: E402
from shared.messages import Bar, HealthReport, HealthRequest  # noqa: E402
from tests.support.sim import VENV_PYTHON, RunningSim, running_sim  # noqa: E402

SYMBOLS = "AAPL,MSFT,SPY,QQQ,NVDA"


class Clock(Listener):
    """A session listener that notes when READY came and when each symbol's bar last arrived."""

    def __init__(self) -> None:
        self.ready_at: float | None = None
        self.bar_at: dict[str, float] = {}

    def status_changed(self, status: Status) -> None:
        if status.state == "READY":
            self.ready_at = time.perf_counter()

    def bar(self, spec: SubscriptionSpec, bar: Any) -> None:
        self.bar_at[spec.symbol] = time.perf_counter()


def settings(port: int, **kw: Any) -> Settings:
    return load_settings(ib_port=port, symbols=SYMBOLS, **kw)


async def until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(0.001)


async def connect_to_ready(port: int, n: int) -> tuple[list[float], list[float]]:
    bare: list[float] = []
    bridge: list[float] = []
    for i in range(n):
        ib = IB()
        t0 = time.perf_counter()
        await ib.connectAsync("127.0.0.1", port, clientId=500 + i, timeout=10)
        bare.append(time.perf_counter() - t0)
        ib.disconnect()
        session = GatewaySession(settings(port))
        clock = Clock()
        session.listener = clock
        stop = asyncio.Event()
        t0 = time.perf_counter()
        task = asyncio.create_task(session.run(stop))
        await until(lambda c=clock: c.ready_at is not None)
        bridge.append(clock.ready_at - t0)  # type: ignore[operator]
        stop.set()
        await task
        await asyncio.sleep(0.05)
    return bare, bridge


async def recovery(sim: RunningSim, drops: int, outages: int) -> tuple[list[float], list[float], list[float]]:
    session = GatewaySession(settings(sim.port))
    clock = Clock()
    session.listener = clock
    stop = asyncio.Event()
    task = asyncio.create_task(session.run(stop))
    symbols = set(SYMBOLS.split(","))
    ready: list[float] = []
    flowing: list[float] = []
    after_outage: list[float] = []

    async def measure(accepting_at: float, gen: int) -> tuple[float, float]:
        await until(lambda: session.generation > gen and clock.ready_at and clock.ready_at > accepting_at)
        await until(lambda: all(clock.bar_at.get(s, 0) > accepting_at for s in symbols))
        return clock.ready_at - accepting_at, max(clock.bar_at[s] for s in symbols) - accepting_at  # type: ignore[operator]

    try:
        await until(lambda: clock.ready_at is not None)
        for _ in range(drops):
            await asyncio.sleep(session.policy.stable_seconds + 0.5)  # a stable session before each drop
            gen, t0 = session.generation, time.perf_counter()
            sim.ctl("drop")  # the simulator keeps listening: it accepts again at once
            r, b = await measure(t0, gen)
            ready.append(r)
            flowing.append(b)
        for _ in range(outages):
            await asyncio.sleep(session.policy.stable_seconds + 0.5)
            gen = session.generation
            sim.ctl("listen", "off")
            sim.ctl("drop")
            await asyncio.sleep(2.0)
            t0 = time.perf_counter()
            sim.ctl("listen", "on")
            after_outage.append((await measure(t0, gen))[1])
    finally:
        stop.set()
        await task
    return ready, flowing, after_outage


# ----------------------------------------------------------------------------------------------- bus


def subscriber_main(endpoint: str, mode: str) -> None:
    """The other process: a shared.bus Subscriber, as features or the executor use it."""

    async def run() -> dict[str, Any]:
        ctx = new_context()
        sub = Subscriber(ctx, [endpoint], ["bar."])
        latencies: list[int] = []
        count, first, last = 0, 0.0, 0.0
        announced = False
        while True:
            got = await sub.recv(timeout=10)
            if got is None:
                break
            msg = got.msg
            assert isinstance(msg, Bar)
            if msg.symbol == "WARM":
                if not announced:
                    print("ready", flush=True)
                    announced = True
                continue
            if msg.symbol == "END":
                break
            now = time.perf_counter()
            if count == 0:
                first = now
            count, last = count + 1, now
            if mode == "latency":
                latencies.append(time.time_ns() - msg.ts_ns)
        sub.close()
        ctx.destroy(linger=0)
        return {"count": count, "seconds": last - first, "latencies_ns": latencies, "gaps": sub.stats.lost}

    print(json.dumps(asyncio.run(run())), flush=True)


def bus(mode: str, n: int) -> dict[str, Any]:
    endpoint = f"ipc://{HOME}/bench-{mode}.pub"
    ctx = new_context()
    pub = Publisher(ctx, endpoint, "bridge")
    child = subprocess.Popen(
        [str(VENV_PYTHON), __file__, "--subscriber", endpoint, mode], stdout=subprocess.PIPE, text=True
    )
    try:
        warm = Bar(symbol="WARM", start_ns=0, bar_seconds=5, open=1, high=1, low=1, close=1, volume=1)
        os.set_blocking(child.stdout.fileno(), False)  # type: ignore[union-attr]
        deadline = time.monotonic() + 20
        while "ready" not in (child.stdout.readline() or ""):  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the subscriber never heard the publisher"
            pub.publish("bar.WARM", warm)
            time.sleep(0.01)
        bar = Bar(
            symbol="AAPL",
            start_ns=1,
            bar_seconds=5,
            open=190.0,
            high=190.5,
            low=189.5,
            close=190.1,
            volume=1e3,
        )
        t0 = time.perf_counter()
        for i in range(n):
            if mode == "latency":
                while time.perf_counter() < t0 + i / 1000.0:
                    time.sleep(0.0002)
            pub.publish("bar.AAPL", bar)
        sent_for = time.perf_counter() - t0
        for _ in range(50):
            pub.publish("bar.END", msgspec.structs.replace(bar, symbol="END"))
            time.sleep(0.002)
        os.set_blocking(child.stdout.fileno(), True)  # type: ignore[union-attr]
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        pub.close()
        ctx.destroy(linger=0)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["sent_per_s"] = n / sent_for
    return result


# ----------------------------------------------------------------------------------------------- RSS


def bridge_rss(sim: RunningSim, seconds: float) -> tuple[float, float]:
    env = {
        **os.environ,
        "IB_PORT": str(sim.port),
        "SYMBOLS": SYMBOLS,
        "PYTHONPATH": str(ROOT),
        "IB_CLIENT_ID": "9",
    }
    proc = subprocess.Popen(
        [str(VENV_PYTHON), "-m", "procs.bridge"],
        cwd=HOME,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0.0
    try:
        ep = req_endpoint(settings(sim.port), "bridge")
        deadline = time.monotonic() + 20
        while True:
            try:
                reply = request_once(ep, HealthRequest(), timeout=0.5)
                if reply.ok and msgspec.convert(reply.result, HealthReport).state == "READY":
                    break
            except Exception:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the bridge did not become READY"
            time.sleep(0.1)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            peak = max(peak, psutil.Process(proc.pid).memory_info().rss / 2**20)
            time.sleep(0.5)
        last = psutil.Process(proc.pid).memory_info().rss / 2**20
    finally:
        stop_process(proc, 15)
    return last, peak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--connects", type=int, default=10)
    p.add_argument("--drops", type=int, default=4)
    p.add_argument("--outages", type=int, default=2)
    p.add_argument("--rss-seconds", type=float, default=15.0)
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--bus-only", action="store_true", help="only the bus figures (throughput and latency)")
    p.add_argument("--subscriber", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.subscriber:
        subscriber_main(*args.subscriber)
        return
    from shared.log import setup_logging

    setup_logging("bench-bridge")  # WARNING and above to stderr only
    if not args.bus_only:
        bridge_figures(args)
    bus_figures(args)


def bridge_figures(args: argparse.Namespace) -> None:
    with running_sim(speed=60.0) as sim:
        bare, bridge = asyncio.run(connect_to_ready(sim.port, args.connects))
        mb, mr = statistics.median(bare) * 1000, statistics.median(bridge) * 1000
        print(
            f"connect-to-READY   bare ib_async {mb:6.1f} ms   bridge {mr:6.1f} ms   ratio {mr / mb:4.2f}"
            f"   (median of {args.connects}; target ratio <= 1.5)"
        )
        ready, flowing, outage = asyncio.run(recovery(sim, args.drops, args.outages))
        print(
            f"recovery after drop   READY {statistics.median(ready) * 1000:6.0f} ms   bars of 5 symbols flowing "
            f"{statistics.median(flowing) * 1000:6.0f} ms   (median of {len(flowing)}; target <= 1500 ms)"
        )
        if outage:
            print(
                f"recovery after a 2 s outage   bars flowing {statistics.median(outage) * 1000:6.0f} ms after the "
                f"simulator listens again (median of {len(outage)}, backoff included)"
            )
        last, peak = bridge_rss(sim, args.rss_seconds)
        print(
            f"bridge RSS   {last:6.1f} MB after {args.rss_seconds:g} s streaming 5 symbols (peak {peak:.1f} MB; "
            "target <= 150 MB)"
        )


def bus_figures(args: argparse.Namespace) -> None:
    rate = bus("rate", args.messages)
    print(
        f"bus throughput   {rate['count'] / rate['seconds']:,.0f} msg/s received in another process "
        f"({rate['count']:,} of {args.messages:,}; publisher {rate['sent_per_s']:,.0f} msg/s; target >= 100,000)"
    )
    lat = bus("latency", 5000)
    ns = lat["latencies_ns"]
    print(
        f"bus latency at 1,000 msg/s   p50 {percentile(ns, 0.5) / 1e3:6.0f} us   p99 {percentile(ns, 0.99) / 1e3:6.0f} us   "
        f"max {max(ns) / 1e3:6.0f} us   ({len(ns)} messages; target p99 <= 1000 us)"
    )


if __name__ == "__main__":
    main()
