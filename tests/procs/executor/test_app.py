"""The executor's adapter: a crashed loop ends the process with an error (so supervisord restarts it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from procs.executor.app import ExecutorApp
from procs.executor.engine import Executor
from shared.bus import new_context
from shared.service import Service


async def test_a_crashed_loop_stops_the_executor_with_an_error(
    make_executor: Callable[..., Executor], stack_env: Path
) -> None:
    ex = make_executor()
    ctx = new_context()
    svc = Service(program="executor", settings=ex.settings, ctx=ctx, stop=asyncio.Event())
    app = ExecutorApp(svc, ex)

    async def broken() -> None:
        raise ValueError("a bug")

    app._timers = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="timers failed"):
            await asyncio.wait_for(app.run(), 10)
    finally:
        ctx.destroy(linger=0)
