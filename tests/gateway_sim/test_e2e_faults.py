"""Every fault the simulator injects, as an unmodified ib_async client experiences it, and the socket states the
kernel shows on the simulator's side (psutil): no CLOSE_WAIT, except in lazy-close mode."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from functools import partial
from typing import Any

import psutil
import pytest
from ib_async import Stock

from procs.gateway_sim.faults import ERROR_TEXTS
from procs.gateway_sim.inprocess import GatewaySim
from tests.gateway_sim.sim_harness import Client, connect, sim_side_sockets, wait_until
from tests.support.sim import running_sim

pytestmark = pytest.mark.timeout(60)
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)


def has_code(client: Client, code: int) -> bool:
    return code in client.codes()


def no_close_wait(port: int) -> bool:
    """Neither end of any connection to the simulator is stuck in CLOSE_WAIT."""
    return not [
        c
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_CLOSE_WAIT
        and ((c.laddr and c.laddr.port == port) or (c.raddr and c.raddr.port == port))
    ]


async def test_drop_closes_every_session_with_fin_and_clients_can_reconnect(sim: GatewaySim) -> None:
    a, b = await connect(sim.port, 1), await connect(sim.port, 2)
    assert sim.drop() == {"ok": True, "closed": 2, "how": "FIN"}
    await wait_until(lambda: a.disconnects == 1 and b.disconnects == 1, what="both clients to see the drop")
    assert not a.ib.isConnected()
    # the simulator closed first: its side waits in TIME_WAIT, nobody in CLOSE_WAIT
    await wait_until(lambda: sim_side_sockets(sim.port, psutil.CONN_TIME_WAIT) and no_close_wait(sim.port))
    again = await connect(sim.port, 1)
    assert again.ib.isConnected()
    again.ib.disconnect()


async def test_reset_closes_every_session_with_rst(sim: GatewaySim) -> None:
    client = await connect(sim.port, 1)
    assert sim.reset()["how"] == "RST"
    await wait_until(lambda: client.disconnects == 1, what="the client to see the reset")
    await asyncio.sleep(0.05)
    # an RST leaves nothing behind on either side: no TIME_WAIT, no CLOSE_WAIT
    assert not sim_side_sockets(sim.port, psutil.CONN_TIME_WAIT) and no_close_wait(sim.port)


async def test_client_close_or_reset_leaves_no_close_wait(sim: GatewaySim) -> None:
    idle = await connect(sim.port, 1)
    streaming = await connect(sim.port, 2)
    resetting = await connect(sim.port, 3)
    streaming.ib.reqMktData(AAPL)  # quotes still flowing while it leaves
    await asyncio.sleep(0.3)
    idle.ib.disconnect()
    streaming.ib.disconnect()
    transport = resetting.ib.client.conn.transport
    assert transport is not None
    transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    transport.abort()
    await wait_until(lambda: not sim.status()["sessions"], what="all three sessions to end")
    await asyncio.sleep(0.1)
    assert no_close_wait(sim.port)


async def test_lazy_close_leaves_a_gateway_side_close_wait_until_switched_off() -> None:
    with running_sim(extra_args=["--lazy-close"]) as gateway:
        client = await connect(gateway.port, 1)
        client.ib.disconnect()

        def gateway_close_waits() -> list[Any]:
            return sim_side_sockets(gateway.port, psutil.CONN_CLOSE_WAIT)

        await wait_until(gateway_close_waits, what="a CLOSE_WAIT on the simulator's side")
        assert gateway_close_waits()[0].pid in (gateway.pid, None)  # None: pid not visible to this user
        assert [s["stage"] for s in gateway.status()["sessions"]] == ["zombie"]
        assert gateway.status()["faults"]["lazy_close"] is True
        again = await connect(gateway.port, 1)  # the id is released even though the socket lingers
        again.ib.disconnect()
        assert gateway.ctl("lazy-close", "off")["closed_lingering"] >= 1
        await wait_until(lambda: not gateway_close_waits(), what="the lingering sockets to close")


async def test_silent_answers_nothing_but_keeps_the_socket(sim: GatewaySim) -> None:
    client = await connect(sim.port, 1)
    ticks: list[float] = []
    client.ib.reqMktData(AAPL).updateEvent.connect(lambda t: ticks.append(t.last), keep_ref=True)
    await wait_until(lambda: ticks, what="quotes")
    sim.silent(True)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.ib.reqCurrentTimeAsync(), 0.4)
    with pytest.raises(TimeoutError):
        await connect(sim.port, 2, timeout=0.4)  # not even the handshake is answered
    seen = len(ticks)
    await asyncio.sleep(0.3)
    assert len(ticks) == seen and client.ib.isConnected() and client.disconnects == 0
    sim.silent(False)
    assert await asyncio.wait_for(client.ib.reqCurrentTimeAsync(), 2)
    await wait_until(lambda: len(ticks) > seen, what="quotes to flow again")
    client.ib.disconnect()


async def test_silent_after_handshake_answers_the_handshake_only(
    sim: GatewaySim, caplog: pytest.LogCaptureFixture
) -> None:
    sim.silent("after-handshake")
    with caplog.at_level(logging.INFO, logger="ib_async.client"), pytest.raises(TimeoutError):
        await connect(sim.port, 1, timeout=0.4)
    assert any("Logged on to server version 178" in r.getMessage() for r in caplog.records)
    assert sim.status()["faults"]["silent"] == "after-handshake"


async def test_listen_off_refuses_new_connects_and_keeps_sessions(sim: GatewaySim) -> None:
    client = await connect(sim.port, 1)
    sim.listen(False)
    with pytest.raises(ConnectionRefusedError):
        await connect(sim.port, 2, timeout=1)
    assert await client.ib.reqCurrentTimeAsync()
    sim.listen(True)
    other = await connect(sim.port, 2)
    assert other.ib.isConnected()
    other.ib.disconnect()
    client.ib.disconnect()


async def test_error_codes_arrive_with_the_real_texts_and_keep_the_socket(sim: GatewaySim) -> None:
    client = await connect(sim.port, 1)
    for code in (1100, 1101, 1102, 2103, 2104, 2105, 2106, 2110, 10197, 4242):
        sim.error(code)
        await wait_until(partial(has_code, client, code), what=f"error {code}")
    texts = {code: text for req_id, code, text in client.errors if req_id == -1}
    for code in (1100, 1101, 1102, 2103, 2104, 2105, 2106, 2110, 10197):
        assert texts[code] == ERROR_TEXTS[code]
    sim.error(10197, 42)
    await wait_until(lambda: (42, 10197) in [(r, c) for r, c, _ in client.errors], what="10197 for reqId 42")
    assert client.ib.isConnected() and client.disconnects == 0
    client.ib.disconnect()


async def test_1100_pauses_data_1102_resumes_it_and_1101_loses_the_subscriptions(sim: GatewaySim) -> None:
    client = await connect(sim.port, 1)
    ticks: list[float] = []
    client.ib.reqMktData(AAPL).updateEvent.connect(lambda t: ticks.append(t.last), keep_ref=True)
    await wait_until(lambda: ticks, what="quotes")

    async def flowing() -> bool:
        seen = len(ticks)
        await asyncio.sleep(0.6)
        return len(ticks) > seen

    sim.error(1100)
    await asyncio.sleep(0.05)
    assert not await flowing()
    sim.error(1102)  # restored, data maintained
    assert await flowing()
    sim.error(1101)  # restored, data lost: the client must subscribe again
    assert not await flowing()
    assert sim.status()["sessions"][0]["market_data_lines"] == 0
    client.ib.disconnect()


async def test_hmds_farm_down_fails_history_until_it_is_back(sim: GatewaySim) -> None:
    client = await connect(sim.port, 1)
    sim.error(2105)
    bars = await client.ib.reqHistoricalDataAsync(AAPL, "", "1 D", "5 mins", "TRADES", False)
    assert len(bars) == 0 and 162 in client.codes()
    sim.error(2106)
    bars = await client.ib.reqHistoricalDataAsync(AAPL, "", "1 D", "5 mins", "TRADES", False)
    assert len(bars) > 0
    client.ib.disconnect()


async def test_pacing_over_50_messages_a_second_gets_100_then_a_drop(sim: GatewaySim) -> None:
    client = await connect(sim.port, 1)
    client.ib.client.MaxRequests = 0  # switch off ib_async's own 45/s throttle to exceed the Gateway's 50/s
    for _ in range(150):  # far beyond 50 even if the simulator's loop lags and its bucket refills meanwhile
        client.ib.client.reqCurrentTime()  # type: ignore[no-untyped-call]
    await wait_until(
        lambda: 100 in client.codes() and client.disconnects == 1,
        what=f"error 100 and the drop (codes {client.codes()}, disconnects {client.disconnects})",
    )
    sim.pacing(False)
    calm = await connect(sim.port, 1)
    calm.ib.client.MaxRequests = 0
    for _ in range(80):
        calm.ib.client.reqCurrentTime()  # type: ignore[no-untyped-call]
    await wait_until(lambda: sim.status()["sessions"][0]["msgs_in"] >= 80, what="all 80 requests to arrive")
    assert calm.ib.isConnected() and 100 not in calm.codes()
    calm.ib.disconnect()
