"""The feature worker on the in-memory bus (a fake bridge): warm-up per symbol, vectors per closed bar, resync on gaps."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from procs.features.app import FeatureService
from procs.features.batch import bars_frame, compute_features
from procs.features.featureset import FEATURES
from procs.features.synthetic import SESSION_OPEN_2024_03_04, random_walk_bars
from shared.bus.factory import MemoryBus
from shared.config import load_settings
from shared.messages import Bar, FeatureVector
from tests.procs.features.busfakes import FakeBridge, make_service, stopped, until

NS = 10**9
SYMBOLS = ("AAA", "BBB")
HISTORY_BARS = 80
T0 = SESSION_OPEN_2024_03_04 + HISTORY_BARS * 60 * NS  # history ends, live 5-second bars begin


def _history() -> dict[str, list[Bar]]:
    return {
        sym: random_walk_bars(sym, HISTORY_BARS, start_ns=SESSION_OPEN_2024_03_04, seed=i, price=100 + 50 * i)
        for i, sym in enumerate(SYMBOLS)
    }


def _live(history: dict[str, list[Bar]], minutes: int) -> dict[str, list[Bar]]:
    return {
        sym: random_walk_bars(
            sym, minutes * 12, bar_seconds=5, start_ns=T0, seed=10 + i, price=bars[-1].close, vol=3e-4
        )
        for i, (sym, bars) in enumerate(history.items())
    }


class Harness:
    """A FeatureService between a fake bridge and a subscriber to its feat. topics."""

    def __init__(self, stack_env: Path, **settings: Any) -> None:
        self.bus = MemoryBus()
        self.settings = load_settings(symbols=SYMBOLS, bar_seconds=60, warmup_bars=200, **settings)
        self.history = _history()
        self.bridge = FakeBridge(self.bus, self.history)
        self.svc = make_service(self.bus, "features", self.settings)
        self.service = FeatureService(self.svc, self.bridge.pub_ep, self.bridge.req_ep)
        self.out = self.bus.subscriber(["inproc://features-pub"], ["feat."])
        self.vectors: list[FeatureVector] = []

    async def __aenter__(self) -> Harness:
        self.bridge.start()
        self.task = asyncio.create_task(self.service.run())
        # the status carries the Gateway's clock; re-sent until the warm-up of every symbol is done
        await until(
            "warm-up of both symbols",
            lambda: self.svc.state == "RUNNING",
            tick=lambda: self.bridge.status(T0),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await stopped(self.svc, self.task)
        await self.bridge.close()
        self.out.close()
        self.bus.close()

    async def collect(self, n: int, timeout: float = 10.0) -> list[FeatureVector]:
        async def drain() -> None:
            while len(self.vectors) < n:
                got = await self.out.recv(timeout=0.1)
                if got is not None and isinstance(got.msg, FeatureVector):
                    self.vectors.append(got.msg)

        await asyncio.wait_for(drain(), timeout)
        return self.vectors


def test_warm_up_asks_history_once_per_symbol_then_publishes_one_warm_vector_per_closed_bar(
    stack_env: Path,
) -> None:
    async def go() -> None:
        async with Harness(stack_env) as h:
            assert sorted(r.symbol for r in h.bridge.requests) == list(SYMBOLS)
            assert all(r.bar_seconds == 60 for r in h.bridge.requests)
            live = _live(h.history, minutes=3)
            for a, b in zip(live["AAA"], live["BBB"], strict=True):
                h.bridge.bar(a)
                h.bridge.bar(b)
            got = await h.collect(6)
            assert sorted((v.symbol, v.end_ns) for v in got) == [
                (s, T0 + k * 60 * NS) for s in SYMBOLS for k in (1, 2, 3)
            ]
            assert all(v.warm for v in got)  # 80 history bars + live: warm at once
            # the live vectors are the features of history + live bars, computed in one batch
            aaa = [v for v in got if v.symbol == "AAA"]
            from procs.features.bars import aggregate

            whole = compute_features(bars_frame(h.history["AAA"] + aggregate(live["AAA"], 60))).to_dicts()
            for vector, row in zip(aaa, whole[-3:], strict=True):
                for name in FEATURES:
                    assert vector.values[name] == pytest.approx(row[name], abs=1e-9), name

    asyncio.run(go())


def test_a_bad_bar_never_becomes_a_vector_and_is_counted_by_reason(stack_env: Path) -> None:
    async def go() -> None:
        async with Harness(stack_env) as h:
            live = _live(h.history, minutes=1)["AAA"]
            for i, bar in enumerate(live):
                if i == 3:
                    h.bridge.bar(msgspec.structs.replace(bar, high=math.nan))
                    h.bridge.bar(msgspec.structs.replace(bar, low=bar.high * 2))
                h.bridge.bar(bar)
            (vector,) = await h.collect(1)
            assert all(math.isfinite(x) for x in vector.values.values())
            await until("heartbeat counters", lambda: h.svc.counters.get("reject_non_finite") == 1)
            assert h.svc.counters["reject_ohlc_inconsistent"] == 1
            assert h.svc.counters["vectors"] == 1

    asyncio.run(go())


def test_a_seq_gap_and_a_new_bridge_epoch_each_trigger_a_new_warm_up(stack_env: Path) -> None:
    async def go() -> None:
        async with Harness(stack_env) as h:
            assert len(h.bridge.requests) == 2
            h.bridge.publisher.stream_seqs["gateway"] += 3  # three gateway states lost on the way
            h.bridge.status(T0)
            await until(
                "warm-up after the gap", lambda: len(h.bridge.requests) == 4, tick=lambda: h.bridge.status(T0)
            )
            h.bridge.new_epoch()
            await until(
                "warm-up after the restart",
                lambda: len(h.bridge.requests) == 6,
                tick=lambda: h.bridge.status(T0),
            )
            await until("warm-ups counted", lambda: h.svc.counters.get("warmups") == 6)

    asyncio.run(go())


def test_warm_up_waits_for_the_session_and_runs_again_when_it_comes_back(stack_env: Path) -> None:
    async def go() -> None:
        bus = MemoryBus()
        settings = load_settings(symbols=SYMBOLS, bar_seconds=60, warmup_bars=200)
        bridge = FakeBridge(bus, _history(), name="fb2")
        svc = make_service(bus, "features", settings)
        bridge.start()
        task = asyncio.create_task(FeatureService(svc, bridge.pub_ep, bridge.req_ep).run())
        try:
            for _ in range(20):  # a second of CONNECTING: nobody asks a bridge without a session
                bridge.status(T0, "CONNECTING")
                await asyncio.sleep(0.05)
            assert bridge.requests == []
            await until(
                "warm-up once READY", lambda: len(bridge.requests) == 2, tick=lambda: bridge.status(T0)
            )
            bridge.status(T0, "DEGRADED")
            bridge.status(T0, "READY")
            await asyncio.sleep(0.3)
            assert len(bridge.requests) == 2  # a farm flap loses no bars: no new warm-up
            bridge.status(T0, "DISCONNECTED")
            await until(
                "warm-up after the reconnect",
                lambda: len(bridge.requests) == 4,
                tick=lambda: bridge.status(T0),
            )
        finally:
            await stopped(svc, task)
            await bridge.close()
            bus.close()

    asyncio.run(go())
