"""Monitor benchmark: its CPU share while the whole stack trades 20 symbols, /metrics latency, resident memory.

Run from the repository root: `.venv/bin/python bench/monitor.py [SECONDS]` (about a minute and a half). It runs
the real supervisord.conf (tests/support/stack.py) with every program in a temporary directory, the simulator
sped up and 20 symbols, a local webhook as the alert sink; then samples the monitor's CPU and RSS with psutil and
times GET /metrics. Targets (issue 16): CPU <= 2% of a core, /metrics < 20 ms, RSS <= 120 MB. It stops
everything it started by pid, and never connects to a real Gateway port.
"""

from __future__ import annotations

import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from bench.common import percentile  # noqa: E402
from tests.procs.monitor.receivers import hook_server  # noqa: E402
from tests.support.sim import free_port  # noqa: E402
from tests.support.stack import ALL_PROGRAMS, running_stack, wait_for  # noqa: E402

SYMBOLS = "AAPL,MSFT,SPY,QQQ,NVDA,AMZN,GOOGL,META,TSLA,AMD,INTC,IBM,ORCL,CSCO,ADBE,CRM,NFLX,PEP,KO,XOM"
CPU_TARGET = 2.0
METRICS_TARGET_MS = 20.0
RSS_TARGET_MB = 120.0


def main(seconds: float = 60.0) -> int:
    with hook_server() as hook:
        port = free_port()
        env = {
            "SYMBOLS": SYMBOLS,
            "LOG_LEVEL": "INFO",
            "SIM_SPEED": "60",
            "BAR_SECONDS": "5",
            "WARMUP_BARS": "30",
            "STRATEGY": "meanrev",
            "STRATEGY_PARAMS": "entry_z=0.5,weight=0.2",
            "ALERT_URLS": hook.json_url(),
            "MONITOR_PORT": str(port),
            "HEARTBEAT_SECONDS": "2",
        }
        with running_stack(env, programs=ALL_PROGRAMS, timeout=90) as stack:
            url = f"http://127.0.0.1:{port}/metrics"
            wait_for("/metrics", lambda: urllib.request.urlopen(url, timeout=2).status == 200, 60)
            time.sleep(10)  # warm-up bars, first orders
            proc = psutil.Process(int(stack.info("monitor")["pid"]))
            cpu0, t0 = proc.cpu_times(), time.monotonic()
            latencies: list[float] = []
            rss_max = 0
            deadline = t0 + seconds
            while time.monotonic() < deadline:
                started = time.perf_counter()
                urllib.request.urlopen(url, timeout=5).read()
                latencies.append((time.perf_counter() - started) * 1000)
                rss_max = max(rss_max, proc.memory_info().rss)
                time.sleep(1.0)
            cpu1, t1 = proc.cpu_times(), time.monotonic()
            busy = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
            cpu_pct = 100 * busy / (t1 - t0)
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            orders = next(
                (line for line in text.splitlines() if line.startswith("ibstack_orders_total ")), ""
            )
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    rss_mb = rss_max / 1e6
    print(f"monitor over {seconds:.0f}s with 20 symbols trading ({orders or 'orders: ?'}):")
    print(f"  CPU        {cpu_pct:.2f}% of a core (target <= {CPU_TARGET:g}%)")
    print(
        f"  /metrics   p50 {p50:.1f} ms, p99 {p99:.1f} ms, {len(latencies)} scrapes (target < {METRICS_TARGET_MS:g} ms)"
    )
    print(f"  RSS        {rss_mb:.0f} MB max (target <= {RSS_TARGET_MB:g} MB)")
    ok = cpu_pct <= CPU_TARGET and p99 < METRICS_TARGET_MS and rss_mb <= RSS_TARGET_MB
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0))
