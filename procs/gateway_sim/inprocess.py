"""GatewaySim: the simulator in a background thread of the current process, for fast in-process tests.

Same server, same commands as the subprocess and `bin/gateway-sim-ctl`; each fault is a method. It runs its own
asyncio loop in a daemon thread, so a test's ib_async client (in the main thread) and the simulator never share
a loop. It must always be stopped (use it as a context manager).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from procs.gateway_sim.control import ControlServer, run_command
from procs.gateway_sim.server import SimConfig, SimServer

T = TypeVar("T")


class GatewaySim:
    """`with GatewaySim(speed=60) as sim: IB().connect("127.0.0.1", sim.port, ...)`."""

    def __init__(
        self, config: SimConfig | None = None, *, control_dir: Path | None = None, **fields: Any
    ) -> None:
        self.config = config or SimConfig(port=0, **fields)
        self.control_dir = control_dir
        self.server: SimServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._control: ControlServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None, "GatewaySim is not started"
        return self.server.port

    def start(self) -> GatewaySim:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_server())
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="gateway-sim", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise TimeoutError("GatewaySim did not start within 30 s")
        if failure:
            raise failure[0]
        return self

    async def _start_server(self) -> None:
        self.server = SimServer(self.config)
        await self.server.start()
        if self.control_dir is not None:
            self._control = ControlServer(self.server, self.control_dir)
            await self._control.start()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            if self._control is not None:
                await self._control.stop()
            if self.server is not None:
                await self.server.stop()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    def __enter__(self) -> GatewaySim:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------------- faults

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        assert self._loop is not None, "GatewaySim is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def command(self, *argv: str) -> dict[str, Any]:
        """Any control command, exactly as `bin/gateway-sim-ctl` takes it; raises on a user error."""
        assert self.server is not None, "GatewaySim is not started"
        answer = self.call(run_command(self.server, [str(a) for a in argv]))
        if not answer.get("ok"):
            raise ValueError(answer.get("error"))
        return answer

    def status(self) -> dict[str, Any]:
        return self.command("status")

    def drop(self) -> dict[str, Any]:
        return self.command("drop")

    def reset(self) -> dict[str, Any]:
        return self.command("reset")

    def silent(self, mode: str | bool) -> dict[str, Any]:
        value = ("on" if mode else "off") if isinstance(mode, bool) else mode
        return self.command("silent", value)

    def handshake_delay(self, seconds: float) -> dict[str, Any]:
        return self.command("handshake-delay", str(seconds))

    def listen(self, on: bool) -> dict[str, Any]:
        return self.command("listen", "on" if on else "off")

    def error(self, code: int, req_id: int | None = None, message: str | None = None) -> dict[str, Any]:
        argv = (
            ["error", str(code)]
            + ([str(req_id)] if req_id is not None else [])
            + ([message] if message else [])
        )
        return self.command(*argv)

    def pacing(self, on: bool) -> dict[str, Any]:
        return self.command("pacing", "on" if on else "off")

    def next_id_rollback(self, order_id: int) -> dict[str, Any]:
        return self.command("next-id-rollback", str(order_id))

    def lazy_close(self, on: bool) -> dict[str, Any]:
        return self.command("lazy-close", "on" if on else "off")

    def fill_while_disconnected(self) -> dict[str, Any]:
        return self.command("fill-while-disconnected")

    def readonly(self, on: bool) -> dict[str, Any]:
        return self.command("readonly", "on" if on else "off")

    def correct_execution(
        self, exec_id: str, price: object | None = None, quantity: object | None = None
    ) -> dict[str, Any]:
        argv = ["correct-execution", exec_id, "-" if price is None else str(price)]
        return self.command(*argv, *([] if quantity is None else [str(quantity)]))

    def manual_order(self, symbol: str, action: str, quantity: object) -> dict[str, Any]:
        return self.command("manual-order", symbol, action, str(quantity))

    def holding(self, symbol: str, quantity: object, sec_type: str = "STK") -> dict[str, Any]:
        return self.command("holding", symbol, str(quantity), sec_type)

    def delay(self, kind: str, seconds: float) -> dict[str, Any]:
        return self.command("delay", kind, str(seconds))

    def audit(self) -> dict[str, Any]:
        return self.command("audit")
