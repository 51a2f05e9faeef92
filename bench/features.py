"""Benchmark of the feature worker: polars vs pandas warm-up, incremental cost per bar, resident memory.

usage: .venv/bin/python bench/features.py [--symbols 20] [--bars 5000] [--no-memory]

1. Warm-up: the whole feature set over SYMBOLS x BARS one-minute bars, polars (procs.features.batch) against a
   pandas groupby implementation of the same features written below, in the same run; best of 3. The two
   results are compared (max abs difference printed) so the race is over the same work. Target: polars >= 2x.
2. Incremental: FeatureState.update, microseconds per bar per symbol. Target: <= 50 us.
3. Memory: a real `python -m procs.features` process fed by a fake bridge (ipc sockets in a temp stack home)
   with BARS of history per symbol and some live bars; its resident set size. Target: <= 250 MB.
It only prints figures; it never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
import psutil  # noqa: E402

from procs.features.batch import bars_frame, compute_features  # noqa: E402
from procs.features.featureset import FEATURES, FLAT_STD  # noqa: E402
from procs.features.incremental import FeatureState  # noqa: E402
from procs.features.synthetic import SESSION_OPEN_2024_03_04, random_walk_bars  # noqa: E402
from shared.messages import Bar  # noqa: E402

NS = 10**9


def pandas_features(df: pd.DataFrame) -> pd.DataFrame:
    """The same feature set in idiomatic pandas (groupby + transform/ewm/rolling), for the comparison."""
    df = df.sort_values(["symbol", "start_ns"], kind="stable").reset_index(drop=True)
    g = df.groupby("symbol", sort=False)
    c, v = df["close"], df["volume"]
    prev = g["close"].shift(1)
    out = pd.DataFrame(index=df.index)
    for k in (1, 5, 15):
        out[f"ret_{k}"] = c / g["close"].shift(k) - 1
    out["log_ret"] = np.log(c / prev)
    i = g.cumcount()

    def ewm(s: pd.Series, alpha: float) -> pd.Series:
        return s.groupby(df["symbol"], sort=False).transform(
            lambda x: x.ewm(alpha=alpha, adjust=False).mean()
        )

    def roll(s: pd.Series, n: int, how: str) -> pd.Series:
        return s.groupby(df["symbol"], sort=False).transform(
            lambda x: getattr(x.rolling(n), how)(**({"ddof": 0} if how == "std" else {}))
        )

    def z(x: pd.Series, n: int, scale: float) -> pd.Series:
        mean, std = roll(x, n, "mean"), roll(x, n, "std")
        return ((x - mean) / (scale * std)).where(std > FLAT_STD * mean.abs(), 0.0).where(mean.notna())

    out["sma_fast"], out["sma_slow"] = roll(c, 10, "mean"), roll(c, 30, "mean")
    out["ema_fast"] = ewm(c, 2 / 11).where(i >= 9)
    out["ema_slow"] = ewm(c, 2 / 31).where(i >= 29)
    d = c - prev
    gain, loss = ewm(d.clip(lower=0), 1 / 14), ewm((-d).clip(lower=0), 1 / 14)
    rsi = (100 - 100 / (1 + gain / loss)).where(loss != 0, np.where(gain > 0, 100.0, 50.0))
    out["rsi_14"] = rsi.where(i >= 14)
    tr = pd.concat([df["high"] - df["low"], (df["high"] - prev).abs(), (df["low"] - prev).abs()], axis=1).max(
        axis=1
    )
    out["atr_14"] = ewm(tr, 1 / 14).where(i >= 13)
    out["bb_z"] = z(c, 20, 2.0)
    macd = (ewm(c, 2 / 13) - ewm(c, 2 / 27)).where(i >= 25)
    signal = ewm(macd, 2 / 10)
    out["macd"], out["macd_signal"] = macd, signal.where(i >= 33)
    out["macd_hist"] = (macd - signal).where(i >= 33)
    day = pd.to_datetime(df["start_ns"], unit="ns", utc=True).dt.tz_convert("America/New_York").dt.date
    keys = [df["symbol"], day]
    cum_pv = ((df["high"] + df["low"] + c) / 3 * v).groupby(keys, sort=False).cumsum()
    cum_v = v.groupby(keys, sort=False).cumsum()
    out["vwap"] = (cum_pv / cum_v).where(cum_v > 0, c)
    out["vwap_dist"] = c / out["vwap"] - 1
    out["volume_z"] = z(v, 20, 1.0)
    out["rvol_20"] = np.sqrt(roll(out["log_ret"] ** 2, 20, "sum"))
    return pd.concat([df, out], axis=1)


def _bars(symbols: int, bars: int) -> list[Bar]:
    out: list[Bar] = []
    for s in range(symbols):
        out += random_walk_bars(f"S{s:02d}", bars, seed=s, price=50 + 10 * s)
    return out


def _best_of(n: int, fn: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def bench_warmup(bars: list[Bar], symbols: int) -> None:
    frame = bars_frame(bars)
    pdf = pd.DataFrame(frame.to_dict(as_series=False))  # no pyarrow here: plain lists
    t_pl, got_pl = _best_of(3, lambda: compute_features(frame))
    t_pd, got_pd = _best_of(3, lambda: pandas_features(pdf))
    diff = 0.0
    for name in FEATURES:
        a = got_pl[name].to_numpy().astype(float)
        b = got_pd[name].to_numpy().astype(float)
        both = ~np.isnan(a) & ~np.isnan(b)
        assert (np.isnan(a) == np.isnan(b)).all(), f"{name}: defined on different bars"
        diff = max(diff, float(np.max(np.abs(a[both] - b[both]))))
    print(
        f"warm-up  {symbols} symbols x {len(bars) // symbols} one-minute bars ({len(bars):,} rows), best of 3"
    )
    print(f"  polars  {t_pl * 1000:8.1f} ms")
    print(f"  pandas  {t_pd * 1000:8.1f} ms   (same features: max abs difference {diff:.1e})")
    print(f"  polars is {t_pd / t_pl:.1f}x faster (target >= 2x)   [polars threads: {pl.thread_pool_size()}]")


def bench_incremental(bars: list[Bar], symbols: int) -> None:
    states = {s: FeatureState() for s in {b.symbol for b in bars}}
    ordered = sorted(bars, key=lambda b: (b.start_ns, b.symbol))
    t = time.perf_counter()
    for bar in ordered:
        states[bar.symbol].update(bar)
    per_bar = (time.perf_counter() - t) / len(ordered) * 1e6
    print(f"incremental  {per_bar:.1f} us per bar per symbol over {len(ordered):,} updates (target <= 50 us)")


async def _fake_bridge(home: Path, history: dict[str, list[Bar]], stop: asyncio.Event) -> None:
    """The bridge's two sockets in the temp stack home: history on request, gateway status every 0.5 s."""
    from shared.bus import Publisher, RequestServer, new_context, pub_endpoint, req_endpoint
    from shared.config import load_settings
    from shared.messages import BridgeRequest, GatewayStatus, HistoryRequest

    settings = load_settings()
    ctx = new_context()
    pub = Publisher(ctx, pub_endpoint(settings, "bridge"), "bridge")

    async def answer(req: Any) -> Any:
        return history[req.symbol] if isinstance(req, HistoryRequest) else []

    server = RequestServer(ctx, req_endpoint(settings, "bridge"), BridgeRequest, answer)
    serving = asyncio.create_task(server.serve(stop))
    clock = max(bars[-1].start_ns for bars in history.values()) + 60 * NS
    live = {
        s: random_walk_bars(s, 120, bar_seconds=5, start_ns=clock, seed=99, price=b[-1].close)
        for s, b in history.items()
    }
    sent = 0
    try:
        while not stop.is_set():
            pub.publish("gateway", GatewayStatus(state="READY", gateway_time_ns=clock))
            if (
                home / "warm"
            ).exists() and sent < 120:  # after the warm-up: ten minutes of live 5-second bars
                for bars in live.values():
                    pub.publish(f"bar.{bars[sent].symbol}", bars[sent])
                sent += 1
                continue
            await asyncio.sleep(0.5)
    finally:
        await serving
        server.close()
        pub.close()
        ctx.destroy(linger=0)


def _heartbeat(home: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((home / "var" / "run" / "heartbeat-features.json").read_text()))
    except (OSError, ValueError):
        return {}


async def bench_memory(symbols: int, bars: int) -> None:
    """RSS of a real feature worker holding `symbols` x `bars` of warm-up, after live bars flowed."""
    home = Path(tempfile.mkdtemp(prefix="ib", dir="/tmp"))
    names = [f"S{s:02d}" for s in range(symbols)]
    env = {**os.environ, "STACK_HOME": str(home), "VAR_DIR": str(home / "var"), "SYMBOLS": ",".join(names),
           "WARMUP_BARS": str(bars), "BAR_SECONDS": "60", "HEARTBEAT_SECONDS": "0.5", "LOG_LEVEL": "WARNING"}  # fmt: skip
    os.environ.update({k: env[k] for k in ("STACK_HOME", "VAR_DIR")})
    history = {
        s: random_walk_bars(s, bars, seed=i, start_ns=SESSION_OPEN_2024_03_04) for i, s in enumerate(names)
    }
    stop = asyncio.Event()
    bridge = asyncio.create_task(_fake_bridge(home, history, stop))
    child = subprocess.Popen([sys.executable, "-m", "procs.features"], cwd=REPO, env=env)
    # sampled, not ru_maxrss: a forked child's maxrss counts the parent's pages from before its exec
    peak = [0.0]
    sampler = threading.Thread(target=_sample_peak, args=(child.pid, peak), daemon=True)
    sampler.start()
    try:
        rss = await _measure(home, child.pid, symbols)
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        stop.set()
        await bridge
        shutil.rmtree(home, ignore_errors=True)
    sampler.join(5)
    print(f"memory  python -m procs.features, {symbols} symbols x {bars} bars of warm-up, then live bars:")
    print(f"  resident {rss:.0f} MB, peak {peak[0]:.0f} MB sampled every 20 ms (target <= 250 MB)")


def _sample_peak(pid: int, peak: list[float]) -> None:
    try:
        process = psutil.Process(pid)
        while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            peak[0] = max(peak[0], process.memory_info().rss / 2**20)
            time.sleep(0.02)
    except psutil.Error:
        return


async def _measure(home: Path, pid: int, symbols: int) -> float:
    deadline = time.monotonic() + 180
    while _heartbeat(home).get("counters", {}).get("warmups", 0) < symbols:
        if time.monotonic() > deadline:
            raise SystemExit("the feature worker did not finish its warm-up within 180 s")
        await asyncio.sleep(0.5)
    (home / "warm").touch()
    while _heartbeat(home).get("counters", {}).get("vectors", 0) < symbols * 10:
        if time.monotonic() > deadline:
            raise SystemExit("the feature worker published no vectors for the live bars")
        await asyncio.sleep(0.5)
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description="feature worker benchmark")
    p.add_argument("--symbols", type=int, default=20)
    p.add_argument("--bars", type=int, default=5000)
    p.add_argument("--no-memory", action="store_true")
    args = p.parse_args()
    bars = _bars(args.symbols, args.bars)
    bench_warmup(bars, args.symbols)
    bench_incremental(bars, args.symbols)
    if not args.no_memory:
        asyncio.run(bench_memory(args.symbols, args.bars))


if __name__ == "__main__":
    main()
