"""The monitor's wiring on the in-memory bus: what other programs publish reaches its journal and its answers, and
the dashboard's halt reaches the executor's request socket. No sockets, no processes: the same Monitor class the
supervised program runs, given a MemoryBus where production gives it ZeroMQ."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from procs.monitor.app import TOPICS, Monitor
from shared.bus import BusPublisher, pub_endpoint, req_endpoint
from shared.bus.factory import MemoryBus
from shared.config import load_settings
from shared.messages import Alert, AlertsRequest, HaltRequest
from shared.service import Service, prepare_var
from tests.support.wait import wait_for_async


@dataclass
class Scene:
    bus: MemoryBus
    svc: Service
    monitor: Monitor
    executor: BusPublisher  # what the executor publishes, as the executor would


@pytest.fixture
async def scene(stack_env: Path) -> AsyncIterator[Scene]:
    settings = load_settings()
    prepare_var(settings)
    bus = MemoryBus()
    svc = Service(program="monitor", settings=settings, bus=bus, stop=asyncio.Event())
    mon = Monitor(svc)
    executor = bus.publisher(pub_endpoint(settings, "executor"), "executor")
    sub = bus.subscriber([pub_endpoint(settings, "executor")], TOPICS)
    server = bus.server(req_endpoint(settings, "monitor"), "monitor", mon.handle)
    tasks = [asyncio.create_task(mon.listen(sub)), asyncio.create_task(server.serve(svc.stop))]
    try:
        yield Scene(bus, svc, mon, executor)
    finally:
        svc.stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
        bus.close()


async def test_an_alert_on_the_bus_is_in_the_monitors_answer(scene: Scene) -> None:
    scene.executor.publish(
        "alert", Alert(severity="CRITICAL", code="halt.daily_loss", message="daily loss beyond the limit")
    )
    client = scene.bus.client(req_endpoint(scene.svc.settings, "monitor"), timeout=2.0)

    async def the_alert() -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = (await client.call(AlertsRequest(limit=5)))["alerts"]
        return [a for a in alerts if "daily loss" in str(a)]

    alerts = await wait_for_async("the alert in the monitor's answer", the_alert, timeout=10)
    assert alerts[-1]["severity"] == "CRITICAL"


async def test_the_dashboards_halt_is_a_halt_request_on_the_executors_socket(scene: Scene) -> None:
    asked: list[HaltRequest] = []

    async def executor(req: Any) -> Any:
        asked.append(req)
        return {"halted": True, "halt_reason": req.reason}

    stand_in = scene.bus.server(req_endpoint(scene.svc.settings, "executor"), "executor", executor)
    serving = asyncio.create_task(stand_in.serve(scene.svc.stop))
    try:
        answer = await scene.monitor.halt("from the dashboard")
    finally:
        scene.svc.stop.set()
        await asyncio.wait_for(serving, 5)
    assert answer == {"ok": True, "error": "", "halted": True}
    assert [type(r) for r in asked] == [HaltRequest] and asked[0].reason == "from the dashboard"


async def test_the_dashboards_halt_says_so_when_the_executor_does_not_answer(scene: Scene) -> None:
    answer = await scene.monitor.halt("nobody home")
    assert answer["ok"] is False and "did not answer" in answer["error"]
