"""The strategy program's adapter: `feat.<SYM>` vectors off the features PUB, `target.<SYM>` onto our own.

The strategy is built from the settings before anything else (a bad name or parameter exits 78). A strategy
that raises is logged with the symbol and that bar is skipped; every other symbol keeps being served.
It must never trade a cold vector or stop on a bad message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger

from procs.strategy.base import Strategy, StrategyRunner
from procs.strategy.registry import build_strategy
from shared.bus import pub_endpoint
from shared.log import log_every
from shared.messages import FeatureVector
from shared.service import Service


def log_strategy_error(strategy: str) -> Callable[[FeatureVector, Exception], None]:
    """An error hook that logs the symbol, the bar and the exception (the traceback once per symbol)."""
    seen: set[str] = set()

    def hook(vector: FeatureVector, exc: Exception) -> None:
        text = f"strategy {strategy} raised on {vector.symbol} (bar ending {vector.end_ns}): {exc!r}; bar skipped"
        if vector.symbol not in seen:
            seen.add(vector.symbol)
            logger.opt(exception=exc).error(text)
        else:
            log_every(f"strategy.error.{vector.symbol}", 30.0, "ERROR", text)

    return hook


async def main(svc: Service) -> None:
    """The supervised program `strategy`."""
    strategy = build_strategy(svc.settings.strategy, svc.settings.strategy_params, svc.settings.symbols)
    await serve_strategy(svc, strategy)


async def serve_strategy(svc: Service, strategy: Strategy, features_pub: str | None = None) -> None:
    """Turn every `feat.` vector into a `target.` until svc.stop is set."""
    logger.info("strategy {} ({})", strategy.name, strategy)
    runner = StrategyRunner(strategy, on_error=log_strategy_error(strategy.name))
    sub = svc.bus.subscriber([features_pub or pub_endpoint(svc.settings, "features")], ["feat."])
    svc.detail["strategy"] = strategy.name
    svc.set_state("RUNNING")
    last_target: dict[str, float] = {}
    reported = 0.0
    try:
        while not svc.stop.is_set():
            got = await sub.recv(timeout=0.5)
            if got is not None and isinstance(got.msg, FeatureVector):
                decided = runner.on_vector(got.msg)
                if decided is not None:
                    svc.publish(f"target.{decided.symbol}", decided)
                    if last_target.get(decided.symbol) != decided.weight:
                        logger.info("target {} {:+.2f}: {}", decided.symbol, decided.weight, decided.reason)
                        last_target[decided.symbol] = decided.weight
            if time.monotonic() - reported >= 0.5:
                reported = time.monotonic()
                svc.counters.update(runner.counters)
                svc.counters["malformed"] = sub.stats.malformed
                svc.detail["targets"] = dict(last_target)
    finally:
        sub.close()
