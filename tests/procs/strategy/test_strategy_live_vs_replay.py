"""The same bars give the same targets live (bridge -> features -> strategy over the bus) and in replay."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest
from loguru import logger

from procs.features.app import FeatureService
from procs.features.synthetic import SESSION_OPEN_2024_03_04, random_walk_bars
from procs.strategy.app import serve_strategy
from procs.strategy.base import Strategy, target
from procs.strategy.meanrev import MeanReversion
from procs.strategy.replay import replay
from procs.strategy.trend import TrendFollower
from shared.bus.factory import MemoryBus
from shared.config import load_settings
from shared.messages import Bar, FeatureVector, TargetPosition
from tests.procs.features.busfakes import FakeBridge, make_service, stopped, until

NS = 10**9
SYMBOLS = ("AAA", "BBB")
HISTORY_BARS = 80
LIVE_MINUTES = 30
T0 = SESSION_OPEN_2024_03_04 + HISTORY_BARS * 60 * NS


def _bars() -> tuple[dict[str, list[Bar]], list[Bar]]:
    history, live = {}, []
    for i, sym in enumerate(SYMBOLS):
        history[sym] = random_walk_bars(sym, HISTORY_BARS, seed=20 + i, price=100.0 + 40 * i, vol=2e-3)
        live += random_walk_bars(
            sym,
            LIVE_MINUTES * 12,
            bar_seconds=5,
            start_ns=T0,
            seed=30 + i,
            price=history[sym][-1].close,
            vol=6e-4,
        )
    live.sort(key=lambda b: (b.start_ns, b.symbol))
    return history, live


def _key(t: TargetPosition) -> tuple[Any, ...]:
    return (t.feature_end_ns, t.symbol, t.weight, t.reason, t.price, t.strategy)


async def _live_targets(
    history: dict[str, list[Bar]], live: list[Bar], strategy: Strategy
) -> list[TargetPosition]:
    bus = MemoryBus()
    settings = load_settings(symbols=SYMBOLS, bar_seconds=60, warmup_bars=200)
    bridge = FakeBridge(bus, history)
    features = make_service(bus, "features", settings)
    strategist = make_service(bus, "strategy", settings)
    targets_in = bus.subscriber(["inproc://strategy-pub"], ["target."])
    bridge.start()
    tasks = [
        asyncio.create_task(FeatureService(features, bridge.pub_ep, bridge.req_ep).run()),
        asyncio.create_task(serve_strategy(strategist, strategy, "inproc://features-pub")),
    ]
    got: list[TargetPosition] = []
    try:
        await until("features warm", lambda: features.state == "RUNNING", tick=lambda: bridge.status(T0))
        await until("strategy serving", lambda: strategist.state == "RUNNING")
        await asyncio.sleep(0.1)  # let the strategy's subscription reach the features PUB
        for bar in live:
            bridge.bar(bar)
        while len(got) < LIVE_MINUTES * len(SYMBOLS):
            received = await asyncio.wait_for(targets_in.recv(timeout=0.1), 10.0)
            if received is not None and isinstance(received.msg, TargetPosition):
                got.append(received.msg)
    finally:
        await stopped(features, tasks[0])
        await stopped(strategist, tasks[1])
        await bridge.close()
        targets_in.close()
        bus.close()
    return got


@pytest.mark.parametrize("strategy", [TrendFollower(), MeanReversion(entry_z=0.5)], ids=["trend", "meanrev"])
def test_live_and_replay_produce_identical_targets(stack_env: Path, strategy: Strategy) -> None:
    history, live = _bars()
    live_targets = asyncio.run(_live_targets(history, live, strategy))
    everything = sorted(
        [b for bars in history.values() for b in bars] + live, key=lambda b: (b.start_ns, b.symbol)
    )
    replayed = replay(everything, strategy, bar_seconds=60)
    replay_targets = [t for t in replayed.targets if t.feature_end_ns > T0]
    assert len(replay_targets) == LIVE_MINUTES * len(SYMBOLS)
    assert sorted(map(_key, live_targets)) == sorted(map(_key, replay_targets))
    assert (
        len({t.weight for t in replay_targets}) > 1
    )  # the comparison covers changing targets, not a constant


class Flaky:
    """Raises on every BBB vector; fine for everyone else."""

    name: ClassVar[str] = "flaky"

    def decide(self, vector: FeatureVector) -> TargetPosition | None:
        if vector.symbol == "BBB":
            raise KeyError("missing feature")
        return target(self.name, vector, 0.25, "fine")


def test_the_strategy_program_skips_a_raising_symbol_logs_it_and_keeps_serving_the_others(
    stack_env: Path,
) -> None:
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR")

    async def go() -> list[TargetPosition]:
        bus = MemoryBus()
        features_pub = bus.publisher("inproc://fake-features", "features")
        strategist = make_service(bus, "strategy", load_settings())
        targets_in = bus.subscriber(["inproc://strategy-pub"], ["target."])
        task = asyncio.create_task(serve_strategy(strategist, Flaky(), "inproc://fake-features"))
        got: list[TargetPosition] = []
        try:
            await until("strategy serving", lambda: strategist.state == "RUNNING")
            await asyncio.sleep(0.1)
            for minute in range(5):
                for sym in ("AAA", "BBB", "CCC"):
                    vector = FeatureVector(
                        symbol=sym, end_ns=minute, bar_seconds=60, close=10.0, warm=True, values={}
                    )
                    features_pub.publish(f"feat.{sym}", vector)
            while len(got) < 10:
                received = await asyncio.wait_for(targets_in.recv(timeout=0.1), 10.0)
                if received is not None and isinstance(received.msg, TargetPosition):
                    got.append(received.msg)
            await until("error counter", lambda: strategist.counters.get("errors") == 5)
        finally:
            await stopped(strategist, task)
            features_pub.close()
            targets_in.close()
            bus.close()
        return got

    try:
        got = asyncio.run(go())
    finally:
        logger.remove(sink)
    assert sorted({t.symbol for t in got}) == ["AAA", "CCC"]
    assert sorted(t.feature_end_ns for t in got if t.symbol == "AAA") == [0, 1, 2, 3, 4]
    assert errors and all("BBB" in line and "KeyError" in line for line in errors)
