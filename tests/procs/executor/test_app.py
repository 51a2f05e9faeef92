"""The executor's adapter: a crashed loop ends the process with an error (so supervisord restarts it); a message
lost from the broker's streams sends it to reconcile."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from procs.executor.actions import Reconcile
from procs.executor.app import ExecutorApp
from procs.executor.engine import Executor
from shared.bus import Received
from shared.bus.factory import MemoryBus
from shared.messages import Fill, Quote
from shared.service import Service


async def test_a_crashed_loop_stops_the_executor_with_an_error(
    make_executor: Callable[..., Executor], stack_env: Path
) -> None:
    ex = make_executor()
    bus = MemoryBus()
    svc = Service(program="executor", settings=ex.view.settings, bus=bus, stop=asyncio.Event())
    app = ExecutorApp(svc, ex)

    async def broken() -> None:
        raise ValueError("a bug")

    app.loops.timers = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="timers failed"):
            await asyncio.wait_for(app.run(), 10)
    finally:
        bus.close()


async def test_a_gap_in_the_broker_streams_asks_for_a_reconciliation_and_a_gap_in_quotes_does_not(
    make_executor: Callable[..., Executor], stack_env: Path
) -> None:
    ex = make_executor()
    bus = MemoryBus()
    try:
        app = ExecutorApp(
            Service(program="executor", settings=ex.view.settings, bus=bus, stop=asyncio.Event()), ex
        )
        fill = Fill(
            exec_id="e1",
            client_order_id="ex-x",
            symbol="AAPL",
            side="BUY",
            quantity=Decimal(1),
            price=Decimal(1),
            exec_ns=1,
        )
        lost_fill = app.loops.decide(Received("fill", fill, gap=2))
        assert [a.reason for a in lost_fill if isinstance(a, Reconcile)] == [
            "2 fill message(s) lost on the bus"
        ]
        assert app.loops.decide(Received("fill", fill)) == []
        quote = Quote(symbol="AAPL", bid=99.99, ask=100.01, last=100.0)
        assert not any(
            isinstance(a, Reconcile) for a in app.loops.decide(Received("quote.AAPL", quote, gap=5))
        )
        app.sub.close()
        app.server.close()
    finally:
        bus.close()
