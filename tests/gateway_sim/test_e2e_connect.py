"""Connecting an unmodified ib_async client: handshake, startup sync with every end marker, client-id rules."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, Contract, LimitOrder, Order, Stock

from procs.gateway_sim.inprocess import GatewaySim
from tests.gateway_sim.sim_harness import connect, wait_until
from tests.support.sim import RunningSim


async def test_read_write_connect_completes_the_full_startup_sync(
    shared_sim: RunningSim, client_id: int
) -> None:
    client = await connect(shared_sim.port, client_id)  # raiseSyncErrors: a missing end marker fails
    try:
        ib = client.ib
        assert ib.isConnected() and ib.client.serverVersion() == 178
        assert ib.managedAccounts() == ["DU1234567"]
        assert {v.tag for v in ib.accountValues()} >= {"NetLiquidation", "TotalCashValue", "BuyingPower"}
        # A Gateway reports its farms right after the API starts.
        await wait_until(lambda: {2104, 2106, 2158} <= set(client.codes()), what="farm status codes")
        assert (await ib.reqCurrentTimeAsync()).tzinfo is not None
    finally:
        client.ib.disconnect()


async def test_readonly_connect_completes_without_timeouts(shared_sim: RunningSim, client_id: int) -> None:
    client = await connect(shared_sim.port, client_id, readonly=True)
    assert client.ib.isConnected()
    client.ib.disconnect()


async def test_status_lists_each_session_with_its_client_id_and_peer_port(
    shared_sim: RunningSim, client_id: int
) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        transport = client.ib.client.conn.transport
        assert transport is not None
        local_port = transport.get_extra_info("sockname")[1]
        sessions = shared_sim.status()["sessions"]
        mine = [s for s in sessions if s["client_id"] == client_id]
        assert len(mine) == 1 and mine[0]["peer_port"] == local_port and mine[0]["stage"] == "ready"
        assert mine[0]["msgs_in"] >= 5  # startApi and the startup sync requests
    finally:
        client.ib.disconnect()
    await wait_until(lambda: all(s["client_id"] != client_id for s in shared_sim.status()["sessions"]))


async def test_second_session_with_the_same_client_id_gets_326_and_is_closed(
    shared_sim: RunningSim, client_id: int
) -> None:
    first = await connect(shared_sim.port, client_id)
    second_errors: list[int] = []
    second = IB()
    second.errorEvent.connect(lambda req_id, code, text, contract: second_errors.append(code), keep_ref=True)
    with pytest.raises((TimeoutError, ConnectionError)):
        # ib_async keeps waiting for API-ready after the close, so the timeout is what ends it
        await second.connectAsync("127.0.0.1", shared_sim.port, clientId=client_id, timeout=1.0)
    assert 326 in second_errors
    assert first.ib.isConnected() and await first.ib.reqCurrentTimeAsync()
    first.ib.disconnect()


async def test_a_client_id_is_free_again_once_its_session_has_closed(sim: GatewaySim) -> None:
    client = await connect(sim.port, 7)
    client.ib.disconnect()
    await wait_until(lambda: not sim.status()["sessions"], what="the session to close")
    again = await connect(sim.port, 7)
    assert again.ib.isConnected() and 326 not in again.codes()
    again.ib.disconnect()


async def test_next_id_rollback_makes_a_reconnected_client_reuse_ids_and_get_103(sim: GatewaySim) -> None:
    client = await connect(sim.port, 3)
    for _ in range(6):
        client.ib.placeOrder(*_far_limit_order())
    await wait_until(lambda: len(sim.status()["open_orders"]) == 6, what="six working orders")
    client.ib.reqGlobalCancel()  # type: ignore[no-untyped-call]
    await wait_until(lambda: not sim.status()["open_orders"], what="the orders to be cancelled")
    client.ib.disconnect()
    sim.next_id_rollback(1)
    assert sim.status()["faults"]["next_id_rollback"] == 1
    rolled = await connect(sim.port, 3)
    assert rolled.ib.client._reqIdSeq < 6  # ib_async seeds its id counter from nextValidId
    trade = rolled.ib.placeOrder(*_far_limit_order())
    await wait_until(lambda: 103 in rolled.codes(), what="error 103 for the reused id")
    assert trade.orderStatus.status == "Cancelled"  # ib_async cancels an order rejected by 103
    assert "next_id_rollback" not in sim.status()["faults"]  # one shot
    rolled.ib.disconnect()


def _far_limit_order() -> tuple[Contract, Order]:
    return Stock("AAPL", "SMART", "USD", conId=265598), LimitOrder("BUY", 1, 1.00)


async def test_handshake_delay_postpones_the_reply(sim: GatewaySim) -> None:
    sim.handshake_delay(0.4)
    loop = asyncio.get_running_loop()
    started = loop.time()
    client = await connect(sim.port, 1)
    assert loop.time() - started >= 0.4
    client.ib.disconnect()
    with pytest.raises(TimeoutError):
        await connect(sim.port, 2, timeout=0.2)
