"""End to end through real supervised processes: simulator bars -> bridge -> features -> strategy -> targets.

The simulator runs its clock at 60x, so a one-minute bar closes every real second; the feature worker warms
up from the bridge's history and the strategy trades from the first closed bar.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from shared.bus import Subscriber, new_context, pub_endpoint
from shared.messages import FeatureVector, TargetPosition
from tests.support.stack import running_stack, wait_for

REPO = Path(__file__).resolve().parents[3]
SYMBOLS = ("AAPL", "MSFT")


async def _watch(
    features_ep: str, strategy_ep: str, timeout: float
) -> tuple[list[FeatureVector], list[TargetPosition]]:
    ctx = new_context()
    sub = Subscriber(ctx, [features_ep, strategy_ep], ["feat.", "target."])
    vectors: list[FeatureVector] = []
    targets: list[TargetPosition] = []

    def enough() -> bool:  # three targets per symbol, and the vector of each (one socket, two publishers)
        decided = {(v.symbol, v.end_ns) for v in vectors}
        return all(sum(t.symbol == s for t in targets) >= 3 for s in SYMBOLS) and all(
            (t.symbol, t.feature_end_ns) in decided for t in targets
        )

    async def collect() -> None:
        while not enough():
            got = await sub.recv(timeout=0.5)
            if got is not None and isinstance(got.msg, FeatureVector):
                vectors.append(got.msg)
            elif got is not None and isinstance(got.msg, TargetPosition):
                targets.append(got.msg)

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        pass  # the assertions below say what was missing
    finally:
        sub.close()
        ctx.destroy(linger=0)
    return vectors, targets


def test_simulator_bars_become_feature_vectors_and_targets_through_supervised_processes() -> None:
    env = {"SYMBOLS": ",".join(SYMBOLS), "BAR_SECONDS": "60", "WARMUP_BARS": "120", "STRATEGY": "trend"}
    with running_stack(env, programs=("gateway_sim", "bridge", "features", "strategy"), timeout=40) as stack:
        s = stack.settings
        vectors, targets = asyncio.run(_watch(pub_endpoint(s, "features"), pub_endpoint(s, "strategy"), 60.0))
        log = stack.log("features")
        assert {v.symbol for v in vectors} == set(SYMBOLS), log[-3000:]
        assert all(v.bar_seconds == 60 and v.end_ns % (60 * 10**9) == 0 for v in vectors)
        warm = [v for v in vectors if v.warm]
        assert warm, f"no warm vector: the warm-up from history did not happen\n{log[-3000:]}"
        for symbol in SYMBOLS:
            assert f" {symbol} (start): " in log, log[-3000:]  # its warm-up progress line
            mine = [t for t in targets if t.symbol == symbol]
            assert len(mine) >= 3, f"{symbol}: {len(mine)} targets\n{stack.log('strategy')[-3000:]}"
            assert all(t.strategy == "trend" and -1 <= t.weight <= 1 and t.reason for t in mine)
            assert {t.feature_end_ns for t in mine} <= {v.end_ns for v in warm if v.symbol == symbol}
        hb_file = s.run_dir / "heartbeat-features.json"

        def counters() -> dict[str, float]:
            return dict(json.loads(hb_file.read_text())["counters"])

        # the heartbeat is written every HEARTBEAT_SECONDS, so it may trail what we just received
        wait_for(
            "features heartbeat counters",
            lambda: counters()["warmups"] >= 2 and counters()["vectors"] >= 6,
            10,
        )
