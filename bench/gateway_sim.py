"""Benchmark the gateway simulator against an unmodified ib_async client and print the figures.

    .venv/bin/python bench/gateway_sim.py [--connects 50] [--symbols 50] [--seconds 60]

1. connect-to-ready: handshake + API-ready (Client.connectAsync) and the full read-write startup sync
   (IB.connectAsync), median and p90 over --connects fresh sessions (target: median < 20 ms);
2. quotes for --symbols symbols at 4 ticks/s each for --seconds, with the simulator's CPU from psutil
   (target: < 10% of one core). The simulator runs as its own process, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ib_async import IB, Stock  # noqa: E402

from bench.common import percentile  # noqa: E402
from procs.gateway_sim.contracts import DEFAULT_CONTRACTS  # noqa: E402
from tests.support.sim import running_sim  # noqa: E402


async def connect_times(port: int, n: int) -> tuple[list[float], list[float]]:
    api_ready: list[float] = []
    full_sync: list[float] = []
    for i in range(n):
        ib = IB()
        started = time.perf_counter()
        await ib.client.connectAsync("127.0.0.1", port, 1000 + 2 * i, timeout=5)  # type: ignore[no-untyped-call]
        api_ready.append(time.perf_counter() - started)
        ib.client.disconnect()  # type: ignore[no-untyped-call]
        ib = IB()
        started = time.perf_counter()
        await ib.connectAsync("127.0.0.1", port, clientId=1001 + 2 * i, timeout=5, raiseSyncErrors=True)
        full_sync.append(time.perf_counter() - started)
        ib.disconnect()
        await asyncio.sleep(0.01)
    return api_ready, full_sync


async def quote_load(port: int, pid: int, symbols: int, seconds: float) -> tuple[float, float, int]:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=7, timeout=10)
    contracts = [
        Stock(c.symbol, "SMART", "USD", conId=c.con_id) for c in list(DEFAULT_CONTRACTS.values())[:symbols]
    ]
    updates = 0

    def on_tickers(tickers: set[object]) -> None:
        nonlocal updates
        updates += len(tickers)

    ib.pendingTickersEvent.connect(on_tickers, keep_ref=True)
    for contract in contracts:
        ib.reqMktData(contract)
    await asyncio.sleep(3.0)  # ib_async paces its requests at 45/s: let every subscription start
    proc = psutil.Process(pid)
    cpu0, wall0, updates0 = sum(proc.cpu_times()[:2]), time.monotonic(), updates
    await asyncio.sleep(seconds)
    cpu1, wall1 = sum(proc.cpu_times()[:2]), time.monotonic()
    ib.disconnect()
    wall = wall1 - wall0
    return 100.0 * (cpu1 - cpu0) / wall, (updates - updates0) / wall / len(contracts), len(contracts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=50)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with running_sim(speed=1.0) as sim:
        api_ready, full_sync = asyncio.run(connect_times(sim.port, args.connects))
        print(f"connect-to-ready over {args.connects} sessions (simulator pid {sim.pid}):")
        for name, values in (
            ("handshake to API-ready", api_ready),
            ("full read-write startup sync", full_sync),
        ):
            ms = [v * 1000 for v in values]
            print(f"  {name:<30} median {statistics.median(ms):6.2f} ms   p90 {percentile(ms, 0.9):6.2f} ms")
        cpu, rate, n = asyncio.run(quote_load(sim.port, sim.pid, args.symbols, args.seconds))
        print(
            f"quotes: {n} symbols for {args.seconds:.0f} s: {rate:.2f} ticker updates/s per symbol received"
        )
        print(f"  simulator CPU {cpu:.1f}% of one core (target < 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
