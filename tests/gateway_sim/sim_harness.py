"""The harness of the simulator's end-to-end tests: an unmodified ib_async IB over real loopback TCP, what it
was told (errors, disconnects), bounded waits, and a look at the simulator's sockets through psutil.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil
from ib_async import IB

from tests.support.wait import wait_for_async


@dataclass
class Client:
    """An ib_async IB plus everything it was told: errors (reqId, code, text) and disconnects."""

    ib: IB
    errors: list[tuple[int, int, str]] = field(default_factory=list)
    disconnects: int = 0

    def on_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        self.errors.append((req_id, code, text))

    def on_disconnect(self) -> None:
        self.disconnects += 1

    def codes(self) -> list[int]:
        return [code for _, code, _ in self.errors]

    async def wait_for(self, condition: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
        await wait_until(condition, timeout, what)


async def wait_until(condition: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """tests/support/wait.py's wait_for_async, in this harness's argument order."""
    await wait_for_async(what or repr(condition), condition, timeout, interval=0.01)


async def connect(port: int, client_id: int, *, readonly: bool = False, timeout: float = 5.0) -> Client:
    ib = IB()
    client = Client(ib)
    # eventkit holds listeners weakly by default: a bare lambda would be collected and silently dropped
    ib.errorEvent.connect(client.on_error, keep_ref=True)
    ib.disconnectedEvent.connect(client.on_disconnect, keep_ref=True)
    # raiseSyncErrors: any startup request left without its end marker fails the connect
    await ib.connectAsync(
        "127.0.0.1", port, clientId=client_id, timeout=timeout, readonly=readonly, raiseSyncErrors=True
    )
    return client


def sim_side_states(port: int) -> list[str]:
    """TCP states of the sockets whose local port is the simulator's (its listener and its session ends)."""
    return [c.status for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port]


def sim_side_sockets(port: int, status: str) -> list[Any]:
    return [
        c for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.status == status
    ]
