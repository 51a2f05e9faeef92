"""bench/pipeline.py's child processes: the real simulator with its bar writes and placeOrder arrivals stamped, and
the floor, a bare ib_async client placing one order per bar it receives.

Each runs in a process of its own, started by bench/pipeline.py; neither is ever imported by the stack.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

from bench.pipeline_report import BAR_NS, FLOOR_CLIENT_ID

FLOOR_FIRST_ORDER_ID = 50_000_000


# ---------------------------------------------------------------------------------- the traced simulator


def run_traced_sim(argv: list[str]) -> int:
    """The real simulator, with bar writes and placeOrder arrivals stamped into $PIPELINE_TRACE."""
    import atexit

    from procs.gateway_sim import server as sim_server
    from procs.gateway_sim import streams
    from procs.gateway_sim.app import run as main
    from procs.gateway_sim.session import Session
    from procs.gateway_sim.wire_requests import parse_place_order

    trace = open(os.environ["PIPELINE_TRACE"], "a", buffering=1 << 16)  # noqa: SIM115 - closed at exit
    atexit.register(trace.close)
    pending: dict[Any, list[tuple[str, int]]] = {}
    build_bars, send, place = streams._bars, Session.send, sim_server.HANDLERS[3]

    def traced_bars(server: Any, session: Any, now: int, out: list[bytes]) -> None:
        before = {rid: sub.next_start_ns for rid, sub in session.subs.bars.items()}
        build_bars(server, session, now, out)
        for rid, sub in session.subs.bars.items():
            for start in range(before.get(rid, sub.next_start_ns), sub.next_start_ns, BAR_NS):
                pending.setdefault(session, []).append((sub.contract.symbol, start))

    def traced_send(self: Any, data: bytes, count: int = 1) -> None:
        bars = pending.pop(self, None)
        t = time.time_ns()  # just before the write to the socket (the write itself counts as latency)
        send(self, data, count)
        if bars:
            trace.writelines(f"B {self.client_id} {sym} {start} {t}\n" for sym, start in bars)

    def traced_place(session: Any, fields: list[str]) -> None:
        t = time.time_ns()  # the message has just been read and decoded
        try:
            req = parse_place_order(fields)
            trace.write(f"O {session.client_id} {req.order_ref or '-'} {req.contract.symbol} {t}\n")
        except Exception:  # an order the simulator will refuse is still the simulator's business
            pass
        place(session, fields)

    streams._bars = traced_bars
    Session.send = traced_send  # type: ignore[method-assign]
    sim_server.HANDLERS[3] = traced_place
    return main(argv)


# ---------------------------------------------------------------------------------- the floor client


def run_floor(port: int, symbols: list[str]) -> int:
    """A bare ib_async client: one order per bar received, as fast as it can."""
    import logging

    from ib_async import IB, LimitOrder, Stock

    # silent, as a floor should be: ib_async would print two lines for the cancel of every IOC order
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)

    async def go() -> None:
        ib = IB()
        ib.client.MaxRequests = 0  # no client-side throttle: this is the floor
        await ib.connectAsync("127.0.0.1", port, clientId=FLOOR_CLIENT_ID, timeout=30)
        # the simulator keeps one order-id space for all clients (IB keeps one per client): stay clear of the
        # bridge's ids, or its orders get 103 "Duplicate order id"
        ib.client.updateReqId(FLOOR_FIRST_ORDER_ID)  # type: ignore[no-untyped-call]
        contracts = [Stock(s, "SMART", "USD") for s in symbols]
        await ib.qualifyContractsAsync(*contracts)

        def on_bar(bars: Any, has_new: bool) -> None:
            if has_new:
                ref = f"floor-{bars.contract.symbol}-{int(bars[-1].time.timestamp())}"
                ib.placeOrder(bars.contract, LimitOrder("BUY", 1, 1.00, tif="IOC", orderRef=ref))

        for c in contracts:
            ib.reqRealTimeBars(c, 5, "TRADES", False).updateEvent += on_bar
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        ib.disconnect()

    asyncio.run(go())
    return 0
