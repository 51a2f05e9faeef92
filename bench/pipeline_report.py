"""bench/pipeline.py's figures: the simulator's trace and the ledger matched into tick-to-order latencies, printed.

Pure reading and arithmetic over the run's files (the trace, the ledger read-only) and the stream stamps the bench
collected; it must never start, stop or ask anything of a process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import percentile
from procs.monitor.daybook import read_only

BRIDGE_CLIENT_ID, FLOOR_CLIENT_ID, PEER_CLIENT_ID = 1, 99, 98  # 98: tests/nautilus/node.py's CLIENT_ID
BAR_NS = 5 * 10**9
STARTUP_BARS = 3  # trading bars left out of the steady-state line (see steady())
HOPS = (
    "simulator -> bridge publishes the bar",
    "bridge -> features publishes the vector",
    "features -> strategy publishes the target",
    "strategy -> executor writes the order",
    "executor -> bridge -> simulator reads placeOrder",
)

# stream ("bar", "feat", "target") -> (symbol, bar start) -> the publish time of that message
StreamStamps = dict[str, dict[tuple[str, int], int]]


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


def analyse(trace: Path, ledger: Path, stream_times: StreamStamps, args: argparse.Namespace) -> None:
    """Match the simulator's trace to the ledger's orders and print every figure of the run."""
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
    with read_only(ledger) as conn:
        rows = list(
            conn.execute(
                "SELECT client_order_id, symbol, decided_on_ns, created_ns FROM orders WHERE decided_on_ns > 0"
            )
        )
    pipeline: dict[tuple[str, int], float] = {}
    hops: dict[str, list[float]] = {name: [] for name in HOPS}
    for coid, symbol, end_ns, created_ns in rows:
        key = (symbol, int(end_ns) - BAR_NS)
        sent, got = bars.get((BRIDGE_CLIENT_ID, *key)), received.get((BRIDGE_CLIENT_ID, coid))
        if sent is None or got is None:
            continue
        pipeline[key] = (got - sent) / 1e6
        stamps = [sent, *(stream_times[k].get(key) for k in ("bar", "feat", "target")), created_ns, got]
        if all(t is not None for t in stamps):
            for name, a, b in zip(HOPS, stamps, stamps[1:], strict=False):
                hops[name].append((b - a) / 1e6)
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
