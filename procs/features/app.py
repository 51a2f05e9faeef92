"""The feature program's wiring: bridge bars off the bus, warm-up through the bridge, vectors onto the bus.

Only the bridge's `bar.` and `gateway` streams are read (whole streams, so their gaps are certain; quotes and
order reports would only wake it), bars go to the FeatureWorker (worker.py decides), each vector goes out as
`feat.<SYM>`. A warm-up task asks the bridge for history, one symbol at a time, at start, after a seq gap or new
bridge epoch, and when the Gateway is READY again (warmup.py decides when). It must never block the bar loop on
a request, and never let a bad bar or a failed request stop the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import msgspec
from loguru import logger

from procs.features.bars import NS
from procs.features.warmup import GatewayWatch, WarmupQueue, history_request
from procs.features.worker import FeatureWorker
from shared.bus import BusClient, BusSubscriber, RequestFailed, RequestTimeout, pub_endpoint, req_endpoint
from shared.log import event, log_every
from shared.messages import Bar, GatewayStatus
from shared.service import Service

HISTORY_TIMEOUT = 60.0  # the bridge paces history requests; one may wait behind others
CLOCK_WAIT = 6.0  # the bridge re-sends its status (with the Gateway's clock) every ~5 s
RETRY_MAX = 30.0
STREAMS = ("bar.", "gateway")


class FeatureService:
    """Wires a FeatureWorker to the bridge's stream and request socket and to our own PUB."""

    def __init__(self, svc: Service, bridge_pub: str | None = None, bridge_req: str | None = None) -> None:
        s = svc.settings
        self.svc = svc
        self.bridge_pub = bridge_pub or pub_endpoint(s, "bridge")
        self.bridge_req = bridge_req or req_endpoint(s, "bridge")
        self.worker = FeatureWorker(s.symbols, s.bar_seconds, s.spike_sigmas, s.warmup_bars)
        self.queue = WarmupQueue()
        self.watch = GatewayWatch()
        # the watch's facts as events the warm-up task waits on
        self.clock_known = asyncio.Event()
        self.gateway_up = asyncio.Event()
        self._reported = 0.0

    async def run(self) -> None:
        svc = self.svc
        sub = svc.bus.subscriber([self.bridge_pub], STREAMS)
        bridge = svc.bus.client(self.bridge_req, timeout=HISTORY_TIMEOUT, retries=0)
        self.queue.ask(self.worker.symbols, "start")
        warmer = asyncio.create_task(self._warm_up_forever(bridge))
        svc.set_state("WARMING")
        try:
            while not svc.stop.is_set():
                got = await sub.recv(timeout=0.5)
                if got is not None:
                    if got.needs_resync:
                        why = f"gap of {got.gap}" if got.gap else "new bridge epoch"
                        event("features.resync", reason=why)
                        self.queue.ask(self.worker.symbols, why)
                    self._on_message(got.topic, got.msg)
                self._report(sub)
        finally:
            warmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warmer
            sub.close()
            bridge.close()

    def _on_message(self, topic: str, msg: object) -> None:
        if isinstance(msg, Bar) and topic.startswith("bar."):
            for vector in self.worker.on_bar(msg):
                self.svc.publish(f"feat.{vector.symbol}", vector)
            bad = self.worker.intake.last_reject
            if bad is None:
                self.watch.on_good_bar(msg.start_ns, msg.bar_seconds)
                self.clock_known.set()
            else:
                log_every(
                    f"features.reject.{bad.reason}",
                    30.0,
                    "WARNING",
                    f"{msg.symbol} bar rejected ({bad.reason}): {bad.detail}",
                )
        elif isinstance(msg, GatewayStatus):
            self._on_gateway(msg)

    def _on_gateway(self, status: GatewayStatus) -> None:
        why = self.watch.on_status(status.state, status.gateway_time_ns)
        if why:
            self.queue.ask(self.worker.symbols, why)
        if self.watch.clock_ns is not None:
            self.clock_known.set()
        if self.watch.up:
            self.gateway_up.set()
        else:
            self.gateway_up.clear()

    async def _warm_up_forever(self, bridge: BusClient) -> None:
        retry = 1.0
        while True:
            await self.queue.wake.wait()
            await self.gateway_up.wait()  # asking a bridge without a session would only time out
            # without the Gateway's clock the newest history bar may be unfinished: wait a little for one
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.clock_known.wait(), CLOCK_WAIT)
            failed = await self._warm_up(bridge, self.queue.take())
            if not failed:
                retry = 1.0
                self.svc.set_state("RUNNING")
                continue
            self.queue.ask(failed, "retry")
            self.queue.wake.clear()
            with contextlib.suppress(TimeoutError):  # a new ask (gap, session back) wakes us early
                await asyncio.wait_for(self.queue.wake.wait(), retry)
            self.queue.wake.set()
            retry = min(retry * 2, RETRY_MAX)

    async def _warm_up(self, bridge: BusClient, todo: dict[str, str]) -> list[str]:
        failed = []
        for i, (symbol, why) in enumerate(sorted(todo.items()), 1):
            started = time.monotonic()
            try:
                history = await self._history(bridge, symbol)
            except (RequestTimeout, RequestFailed, msgspec.ValidationError) as exc:
                failed.append(symbol)
                self.svc.count("warmup_failures")
                log_every(
                    f"features.warmup.{symbol}",
                    30.0,
                    "WARNING",
                    f"warm-up {symbol} failed: {exc}; will retry",
                )
                continue
            result = self.worker.warm_up(symbol, history, self.watch.clock_ns)
            self.svc.count("warmups")
            logger.info(
                "warm-up {}/{} {} ({}): {} history bars, {} used, {} rejected, {} unfinished left out, {} in {:.2f}s",
                i, len(todo), symbol, why, result.history_bars, result.used_bars, result.rejected,
                result.dropped_unfinished, "warm" if result.warm else "NOT warm yet", time.monotonic() - started,
            )  # fmt: skip
        return failed

    async def _history(self, bridge: BusClient, symbol: str) -> list[Bar]:
        s = self.svc.settings
        request = history_request(symbol, s.bar_seconds, s.warmup_bars)
        result = await bridge.call(request, timeout=HISTORY_TIMEOUT)
        return msgspec.convert(result, type=list[Bar])

    def _report(self, sub: BusSubscriber) -> None:
        if time.monotonic() - self._reported < 0.5:  # quotes arrive far more often than heartbeats go out
            return
        self._reported = time.monotonic()
        svc, worker = self.svc, self.worker
        svc.counters.update(worker.counters)
        for reason, n in worker.rejects().items():
            svc.counters[f"reject_{reason}"] = n
        svc.counters["level_shifts"] = worker.intake.level_shifts()
        svc.counters["stream_gaps"] = sub.stats.gaps
        svc.counters["malformed"] = sub.stats.malformed
        svc.detail["warmup_pending"] = sorted(self.queue.pending)
        svc.detail["symbols"] = {
            sym: {"warm": st.warm, "bars": st.n, "last_bar": _iso(st.last_start_ns)}
            for sym, st in worker.states.items()
        }


def _iso(ns: int | None) -> str:
    return "" if ns is None else datetime.fromtimestamp(ns / NS, tz=UTC).isoformat(timespec="seconds")


async def main(svc: Service) -> None:
    """The supervised program `features`."""
    await FeatureService(svc).run()
