"""The paced outbox: ib_async's every message goes through one limiter, orders, heartbeats and cancels have a lane
and a reserve of their own, a cancel never overtakes its own order, a dead session's queue never reaches the next
one, and a burst of requests waits its turn at the door."""

from __future__ import annotations

import asyncio
import logging

from ib_async import IB

from procs.bridge.ib.wire import quiet_ib_async, send_through, writer
from procs.bridge.outbox import PacedOutbox
from procs.bridge.pacing import WINDOW_SECONDS, SlidingWindow, gateway_limiter, order_reserve


def outbox(
    limit: int = 5, window: float = 0.005, room_limit: int = 20, reserve: int = 0
) -> tuple[PacedOutbox, list[str]]:
    ib = IB()
    sent: list[str] = []
    ib.client.conn.sendMsg = lambda raw: sent.append(raw[4:].decode())  # type: ignore[method-assign]
    box = PacedOutbox(
        writer(ib), SlidingWindow(limit=limit, window=window), room_limit=room_limit, reserve=reserve
    )
    send_through(
        ib, box.send
    )  # as the bridge's broker does: every request ib_async encodes goes through the box
    return box, sent


def test_it_replaces_ib_async_sendmsg_and_its_throttle() -> None:
    ib = IB()
    box = PacedOutbox(writer(ib), SlidingWindow(limit=5, window=0.005))
    send_through(ib, box.send)
    assert ib.client.sendMsg == box.send
    assert ib.client.MaxRequests == 0


def test_a_burst_leaves_at_the_limiters_rate() -> None:
    async def go() -> tuple[list[str], float]:
        box, sent = outbox(limit=5, window=0.025)  # 200 messages/s, 5 at once
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(45):
            box.send(f"20\0{i}\0")
        assert len(sent) == 5 and box.backlog == 40
        while box.backlog:
            await asyncio.sleep(0.01)
        return sent, loop.time() - t0

    sent, took = asyncio.run(go())
    assert [m.split("\0")[1] for m in sent] == [str(i) for i in range(45)]  # order kept
    assert took >= 40 / 200.0 * 0.9


def test_heartbeats_and_cancels_jump_the_queue() -> None:
    async def go() -> list[str]:
        box, sent = outbox(limit=1, window=0.01)
        for i in range(5):
            box.send(f"3\0{i}\0")
        box.send("49\x001\x00")
        box.send("4\x001\x007\x00")
        while box.backlog:
            await asyncio.sleep(0.01)
        return sent

    sent = asyncio.run(go())
    assert sent[0].startswith("3\0")
    assert {sent[1], sent[2]} == {"49\x001\x00", "4\x001\x007\x00"}


def test_an_order_overtakes_queued_requests_and_takes_the_reserve_they_leave() -> None:
    async def go() -> tuple[list[str], list[str], int]:
        box, sent = outbox(limit=5, window=0.05, reserve=2)
        for i in range(10):
            box.send(f"1\0{i}\0")  # subscriptions: only 3 of the 5 slots are theirs
        at_once = list(sent)
        box.send("3\x0042\x00AAPL\x00")
        box.send("58\x001\x00")  # a global cancel rides the order lane too
        after_orders = list(sent)
        while box.backlog:
            await asyncio.sleep(0.01)
        return at_once, after_orders, len(sent)

    at_once, after_orders, total = asyncio.run(go())
    assert at_once == [f"1\0{i}\0" for i in range(3)]
    assert after_orders[3:] == ["3\x0042\x00AAPL\x00", "58\x001\x00"]  # at once, ahead of 7 queued
    assert total == 12


def test_the_first_bars_burst_of_orders_goes_at_once_behind_the_history_requests() -> None:
    # what a bench run traced: the feature worker's 20 history requests and a few reconciliation requests, then,
    # ~0.1 s later, an order for each of 20 symbols (with a fifth of the window kept, the last two waited 85 ms)
    async def go() -> tuple[int, int]:
        limit = gateway_limiter(45).limit  # the default BRIDGE_MSGS_PER_SECOND
        box, sent = outbox(limit=limit, window=WINDOW_SECONDS, reserve=order_reserve(limit))
        for i in range(26):
            box.send(f"20\0{i}\0")
        for i in range(20):
            box.send(f"3\0{100 + i}\0")
        orders_out = sum(1 for m in sent if m.startswith("3\0"))
        box.clear()
        return orders_out, box.dropped

    orders_out, requests_held = asyncio.run(go())
    assert orders_out == 20
    assert requests_held == 3  # the rest of the traffic keeps to its half (23 of 45)


def test_requests_wait_while_orders_are_queued_and_never_touch_the_reserve() -> None:
    async def go() -> list[str]:
        box, sent = outbox(limit=3, window=0.03, reserve=1)
        for i in range(4):
            box.send(f"3\0{i}\0")  # 3 go, 1 waits for the window
        box.send("1\x00sub\x00")
        while box.backlog:
            await asyncio.sleep(0.005)
        return sent

    sent = asyncio.run(go())
    assert [m.split("\0")[0] for m in sent] == ["3", "3", "3", "3", "1"]


def test_a_cancel_never_overtakes_its_own_orders_placement() -> None:
    async def go() -> list[str]:
        box, sent = outbox(limit=1, window=0.01)
        box.send("3\x001\x00")  # goes
        box.send("3\x002\x00")
        box.send("3\x003\x00")
        box.send("4\x001\x002\x00\x00")  # cancel of order 2: right behind its placement, ahead of order 3
        box.send("4\x001\x009\x00\x00")  # cancel of an order already out: first
        while box.backlog:
            await asyncio.sleep(0.005)
        return sent

    sent = asyncio.run(go())
    assert sent == ["3\x001\x00", "4\x001\x009\x00\x00", "3\x002\x00", "4\x001\x002\x00\x00", "3\x003\x00"]


def test_an_order_has_room_while_requests_crowd_the_door() -> None:
    async def go() -> tuple[bool, bool, bool]:
        box, _ = outbox(limit=1, window=0.05, room_limit=3)
        for i in range(10):
            box.send(f"1\0{i}\0")
        return box.has_room(), box.has_room(order=True), await box.room(timeout=0.01, order=True)

    requests, orders, order_waited = asyncio.run(go())
    assert requests is False and orders is True and order_waited is True


def test_clear_drops_what_a_dead_session_queued() -> None:
    async def go() -> tuple[list[str], int]:
        box, sent = outbox(limit=1, window=0.02)
        for i in range(10):
            box.send(f"1\0{i}\0")
        box.clear()
        await asyncio.sleep(0.1)
        return sent, box.dropped

    sent, dropped = asyncio.run(go())
    assert len(sent) == 1 and dropped == 9


def test_room_makes_a_burst_wait_at_the_door_and_times_out() -> None:
    async def go() -> tuple[bool, bool, int]:
        box, _ = outbox(limit=1, window=0.05, room_limit=3)
        for i in range(10):
            box.send(f"1\0{i}\0")
        blocked = await box.room(timeout=0.05)
        eventually = await box.room(timeout=2.0)
        return blocked, eventually, box.backlog

    blocked, eventually, backlog = asyncio.run(go())
    assert blocked is False and eventually is True and backlog < 3


def test_ib_async_lines_for_codes_we_report_ourselves_are_kept_quiet(caplog: object) -> None:
    quiet_ib_async()
    log = logging.getLogger("ib_async.wrapper")
    records: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Catch()
    log.addHandler(handler)
    try:
        log.error("Error 1100, reqId -1: Connectivity between IBKR and Trader Workstation has been lost.")
        log.error("Error 10197, reqId 5: No market data during competing live session")
        log.error("Error 201, reqId 12: Order rejected")
    finally:
        log.removeHandler(handler)
    assert records == ["Error 201, reqId 12: Order rejected"]


def test_ib_async_per_order_lines_are_dropped_because_the_bridge_writes_its_own() -> None:
    quiet_ib_async()
    records: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Catch()
    loggers = [logging.getLogger(name) for name in ("ib_async.wrapper", "ib_async.ib")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.addHandler(handler)
        log.setLevel(logging.INFO)  # as the bridge runs them (shared.log.setup_logging)
    try:
        loggers[1].info("placeOrder: New order Trade(contract=Stock(symbol='AAPL'), order=LimitOrder(...))")
        loggers[0].info("orderStatus: Trade(contract=Stock(symbol='AAPL'), ...)")
        loggers[0].info("execDetails Execution(execId='0001', ...)")
        loggers[0].info("Warning 2100, reqId -1: API client has been unsubscribed from account data.")
        loggers[0].warning("IBKR API validation warning: Trade(...)")
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.removeHandler(handler)
            log.setLevel(level)
    assert records == [
        "Warning 2100, reqId -1: API client has been unsubscribed from account data.",
        "IBKR API validation warning: Trade(...)",
    ]
