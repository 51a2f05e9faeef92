"""The request API against the real simulator: contracts, paced history (identical requests share one Gateway
request or a 15-second cache), and an order's life: order events, one fill with orderRef and commission,
executions, positions and open orders as the Gateway holds them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from procs.gateway_sim.inprocess import GatewaySim
from shared.bus import RequestError
from shared.messages import (
    AccountRequest,
    AccountValue,
    ContractRequest,
    ExecutionsRequest,
    Fill,
    HistoryRequest,
    OpenOrdersRequest,
    OrderEvent,
    PlaceOrder,
    Position,
    PositionsRequest,
)
from tests.procs.bridge.bridge_harness import bridge_settings, live_bridge, run, wait_until


@pytest.fixture
def sim(stack_env: Path) -> Iterator[GatewaySim]:
    with GatewaySim(speed=60.0) as gateway:
        yield gateway


def test_contract_details_come_with_the_minimum_tick_and_unknown_symbols_are_named(sim: GatewaySim) -> None:
    async def go() -> tuple[object, str]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            info = await b.api.contract(ContractRequest(symbol="AAPL"))
            with pytest.raises(RequestError) as unknown:
                await b.api.contract(ContractRequest(symbol="ZZZZQ"))
            return info, str(unknown.value)

    info, unknown = run(go())
    assert info.con_id > 0 and info.min_tick == Decimal("0.01") and info.primary_exchange  # type: ignore[attr-defined]
    assert "ZZZZQ" in unknown and "no US stock" in unknown


def test_history_is_paced_and_identical_requests_share_one_gateway_request(sim: GatewaySim) -> None:
    req = HistoryRequest(symbol="MSFT", bar_seconds=60, duration_seconds=3600)

    # the stack's default heartbeat (every 5 s), not the harness's 0.3 s: the outbox's count below is then the
    # history traffic, however long a loaded machine takes to answer
    settings = bridge_settings(sim.port, bridge_heartbeat_seconds=5.0, bridge_heartbeat_timeout=10.0)

    async def go() -> tuple[list[int], float, float, str]:
        async with live_bridge(settings) as b:
            await b.wait_state("READY")
            await b.api.contract(
                ContractRequest(symbol="MSFT")
            )  # details cached: only history goes out below
            # quiet: the start-up subscriptions (2 symbols x bars and quotes) are out and nothing waits
            await wait_until(
                lambda: (
                    b.session.counters.get("subscriptions_issued", 0) >= 4 and b.session.outbox.backlog == 0
                ),
                "a quiet outbox",
            )
            before = b.session.outbox.sent
            answers = await asyncio.gather(*(b.api.history(req) for _ in range(8)))
            after_burst = b.session.outbox.sent
            again = await b.api.history(req)  # within 15 s: IB would refuse it; the bridge answers from cache
            with pytest.raises(RequestError) as bad:
                await b.api.history(HistoryRequest(symbol="MSFT", bar_seconds=7))
            assert again == answers[0]
            return (
                [len(a) for a in answers],
                after_burst - before,
                b.session.outbox.sent - after_burst,
                str(bad.value),
            )

    lengths, burst_msgs, cached_msgs, bad = run(go())
    assert lengths == [lengths[0]] * 8 and lengths[0] >= 50
    assert burst_msgs <= 2  # one history request (plus at most a heartbeat)
    assert cached_msgs <= 1 and "bar_seconds 7" in bad


def test_an_order_is_published_through_its_fill_with_order_ref_and_commission(sim: GatewaySim) -> None:
    order = PlaceOrder(
        client_order_id="fill-me-1", symbol="AAPL", side="BUY", quantity=Decimal(3), order_type="MKT"
    )

    async def go() -> tuple[
        list[str], list[Fill], list[Fill], list[Position], list[OrderEvent], list[AccountValue]
    ]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            await b.api.place_order(order)
            await wait_until(
                lambda: any(f.commission is not None for f in b.messages("fill")),
                "the fill with its commission",
            )
            statuses = [m.status for m in b.messages("order.") if m.client_order_id == "fill-me-1"]
            executions = await b.api.executions(ExecutionsRequest())
            positions = await b.api.positions(PositionsRequest())
            open_orders = await b.api.open_orders(OpenOrdersRequest())
            account = await b.api.account(AccountRequest())
            return statuses, b.messages("fill"), executions, positions, open_orders, account

    statuses, published, executions, positions, open_orders, account = run(go())
    assert statuses[-1] == "FILLED" and "NEW" not in statuses[1:]
    assert {f.exec_id for f in published} == {published[0].exec_id} and len(published) <= 2
    assert published[-1].client_order_id == "fill-me-1" and published[-1].quantity == Decimal(3)
    assert [(e.client_order_id, e.commission is not None) for e in executions] == [("fill-me-1", True)]
    assert [(p.symbol, p.quantity) for p in positions] == [("AAPL", Decimal(3))]
    assert all(o.client_order_id != "fill-me-1" or o.status == "FILLED" for o in open_orders)
    assert account and all("1234567" not in f"{v.account}{v.value}" for v in account)
