"""Orders and the account as an unmodified ib_async client sees them: fills, partial fills, modify, cancel, the
real message order, orderRef everywhere, 103, 321, and a fill that happens while the client is away."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Order, Stock, Trade

from procs.gateway_sim.inprocess import GatewaySim
from tests.gateway_sim.sim_harness import Client, connect, wait_until
from tests.support.sim import RunningSim

pytestmark = pytest.mark.timeout(60)


def stock(symbol: str, con_id: int) -> Stock:
    return Stock(symbol, "SMART", "USD", conId=con_id)


async def last_price(ib: IB, contract: Stock) -> float:
    [ticker] = await ib.reqTickersAsync(contract)
    return float(ticker.last)


def record(trade: Trade, log: list[str]) -> None:
    trade.statusEvent.connect(lambda t: log.append(f"status:{t.orderStatus.status}"), keep_ref=True)
    trade.fillEvent.connect(lambda t, f: log.append("exec"), keep_ref=True)
    trade.commissionReportEvent.connect(lambda t, f, r: log.append("commission"), keep_ref=True)


async def test_market_order_fills_with_execution_commission_position_and_account_updates(
    shared_sim: RunningSim, client_id: int
) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        ib = client.ib
        contract = stock("AMD", 4391)
        before = {p.contract.conId: p.position for p in ib.positions()}.get(4391, 0.0)
        cash_updates: list[str] = []
        ib.accountValueEvent.connect(
            lambda v: cash_updates.append(v.value) if v.tag == "TotalCashValue" else None, keep_ref=True
        )
        log: list[str] = []
        trade = ib.placeOrder(contract, MarketOrder("BUY", 200, orderRef="cid-mkt-1"))
        record(trade, log)
        await wait_until(lambda: trade.orderStatus.status == "Filled", what="the MKT order to fill")
        # account values come with IB's next three-minute push (3 s of real time at this speed), not per fill
        await wait_until(
            lambda: "commission" in log and cash_updates, timeout=10.0, what="commission and account update"
        )
        # the Gateway's order: the order is known (openOrder/orderStatus) before its execution and commission
        assert log.index("exec") < log.index("commission")
        assert log[0].startswith("status:") and log.index("status:Submitted") < log.index("exec")
        assert trade.orderStatus.filled == 200 and trade.orderStatus.avgFillPrice > 0
        assert sum(f.execution.shares for f in trade.fills) == 200
        assert all(f.execution.orderRef == "cid-mkt-1" for f in trade.fills)
        assert trade.fills[-1].commissionReport.commission >= 1.0
        await wait_until(
            lambda: {p.contract.conId: p.position for p in ib.positions()}.get(4391) == before + 200
        )
        assert any(item.contract.conId == 4391 and item.position == before + 200 for item in ib.portfolio())
    finally:
        client.ib.disconnect()


async def test_large_limit_order_fills_in_chunks_with_partial_states(
    shared_sim: RunningSim, client_id: int
) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        ib = client.ib
        contract = stock("INTC", 270639)
        price = await last_price(ib, contract)
        limit = round(price * 1.02, 2)  # marketable: above the ask, so it fills as the quotes come
        partials: list[float] = []
        trade = ib.placeOrder(contract, LimitOrder("BUY", 2000, limit, orderRef="cid-lmt-big"))
        trade.statusEvent.connect(
            lambda t: partials.append(t.orderStatus.filled) if t.orderStatus.status == "Submitted" else None,
            keep_ref=True,
        )
        await wait_until(lambda: trade.orderStatus.status == "Filled", what="the LMT order to fill")
        assert len(trade.fills) >= 2
        assert any(0 < filled < 2000 for filled in partials)  # a PARTIALLY filled state was seen
        assert all(f.execution.price <= limit for f in trade.fills)
    finally:
        client.ib.disconnect()


async def test_modify_then_cancel_a_resting_limit_order(shared_sim: RunningSim, client_id: int) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        ib = client.ib
        contract = stock("CSCO", 90000004)
        price = await last_price(ib, contract)
        order = LimitOrder("BUY", 100, round(price * 0.8, 2), orderRef="cid-rest")
        trade = ib.placeOrder(contract, order)
        await wait_until(lambda: trade.orderStatus.status == "Submitted", what="Submitted")
        order.lmtPrice, order.totalQuantity = round(price * 0.7, 2), 150
        ib.placeOrder(contract, order)  # same order id: a modification
        # the Gateway acknowledges with openOrder + orderStatus carrying the new size
        await wait_until(lambda: trade.orderStatus.remaining == 150, what="the modify to be acknowledged")
        assert trade.orderStatus.status == "Submitted" and trade.log[-2].message == "Modify"
        [mine] = [o for o in shared_sim.status()["open_orders"] if o["order_id"] == order.orderId]
        assert (mine["qty"], Decimal(mine["lmt"]), mine["order_ref"]) == (
            "150",
            Decimal(str(order.lmtPrice)),
            "cid-rest",
        )
        ib.cancelOrder(order)
        await wait_until(lambda: trade.orderStatus.status == "Cancelled", what="Cancelled")
        assert (order.orderId, 202) in [(r, c) for r, c, _ in client.errors]
        assert not [o for o in shared_sim.status()["open_orders"] if o["order_id"] == order.orderId]
    finally:
        client.ib.disconnect()


async def test_a_buy_stop_triggers_once_the_price_reaches_it(shared_sim: RunningSim, client_id: int) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        contract = stock("QCOM", 90000007)
        price = await last_price(client.ib, contract)
        order = Order(action="BUY", totalQuantity=50, orderType="STP", auxPrice=round(price * 0.98, 2))
        order.orderRef = "cid-stop"
        trade = client.ib.placeOrder(contract, order)
        await wait_until(lambda: trade.orderStatus.status == "Filled", what="the stop to trigger and fill")
        assert trade.fills[0].execution.orderRef == "cid-stop"
    finally:
        client.ib.disconnect()


async def test_the_master_client_0_connects_and_sees_every_open_order(shared_sim: RunningSim) -> None:
    client = await connect(shared_sim.port, 0)  # ib_async also sends reqAutoOpenOrders for client 0
    try:
        everyone = await client.ib.reqAllOpenOrdersAsync()
        assert {t.order.orderId for t in everyone} == {
            o["order_id"] for o in shared_sim.status()["open_orders"]
        }
    finally:
        client.ib.disconnect()


async def test_order_queries_return_the_order_ref_everywhere(shared_sim: RunningSim, client_id: int) -> None:
    client = await connect(shared_sim.port, client_id)
    other = await connect(shared_sim.port, client_id + 5000)
    try:
        ib = client.ib
        contract = stock("PEP", 90000006)
        price = await last_price(ib, contract)
        resting = ib.placeOrder(contract, LimitOrder("BUY", 10, round(price * 0.8, 2), orderRef="cid-open"))
        filled = ib.placeOrder(contract, MarketOrder("BUY", 10, orderRef="cid-done"))
        await wait_until(
            lambda: resting.orderStatus.status == "Submitted" and filled.orderStatus.status == "Filled"
        )
        opened = await ib.reqOpenOrdersAsync()
        assert "cid-open" in {t.order.orderRef for t in opened}
        assert "cid-open" not in {
            t.order.orderRef for t in await other.ib.reqOpenOrdersAsync()
        }  # not its own
        everyone = await other.ib.reqAllOpenOrdersAsync()  # but reqAllOpenOrders shows every client's orders
        assert "cid-open" in {t.order.orderRef for t in everyone}
        completed = await ib.reqCompletedOrdersAsync(False)
        assert {"cid-done"} <= {t.order.orderRef for t in completed if t.orderStatus.status == "Filled"}
        fills = await ib.reqExecutionsAsync()
        assert "cid-done" in {f.execution.orderRef for f in fills}
        live = [f for f in ib.fills() if f.execution.orderRef == "cid-done"]
        assert live and all(f.commissionReport.commission > 0 for f in live)
        ib.cancelOrder(resting.order)
    finally:
        client.ib.disconnect()
        other.ib.disconnect()


async def test_account_summary_values_and_positions(shared_sim: RunningSim, client_id: int) -> None:
    client = await connect(shared_sim.port, client_id)
    try:
        summary = {v.tag: v.value for v in await client.ib.accountSummaryAsync()}
        assert float(summary["NetLiquidation"]) > 0 and float(summary["BuyingPower"]) > 0
        assert summary["AccountType"] == "INDIVIDUAL"
        values = {v.tag for v in client.ib.accountValues()}
        assert {"NetLiquidation", "TotalCashValue", "GrossPositionValue", "AccountCode"} <= values
        positions = await client.ib.reqPositionsAsync()
        assert all(p.account == "DU1234567" for p in positions)
    finally:
        client.ib.disconnect()


async def test_a_reused_order_id_gets_103(shared_sim: RunningSim, client_id: int) -> None:
    first = await connect(shared_sim.port, client_id)
    second = await connect(shared_sim.port, client_id + 5000)
    try:
        contract = stock("KO", 90000026)
        trade = first.ib.placeOrder(contract, LimitOrder("BUY", 1, 1.00))
        await wait_until(lambda: trade.orderStatus.status == "Submitted")
        clash = Order(
            orderId=trade.order.orderId, action="BUY", totalQuantity=1, orderType="LMT", lmtPrice=1.0
        )
        second.ib.placeOrder(contract, clash)
        await wait_until(lambda: 103 in second.codes(), what="error 103")
        first.ib.cancelOrder(trade.order)
    finally:
        first.ib.disconnect()
        second.ib.disconnect()


async def test_orders_from_a_read_only_api_get_321(sim: GatewaySim) -> None:
    sim.readonly(True)
    client = await connect(sim.port, 1, readonly=True)
    try:
        trade = client.ib.placeOrder(stock("AAPL", 265598), MarketOrder("BUY", 1))
        await wait_until(lambda: 321 in client.codes(), what="error 321")
        await asyncio.sleep(0.1)
        assert not trade.fills and not sim.status()["open_orders"]
    finally:
        client.ib.disconnect()


async def test_an_order_filled_while_its_client_is_away_shows_up_after_reconnect(sim: GatewaySim) -> None:
    client: Client = await connect(sim.port, 9)
    contract = stock("AAPL", 265598)
    price = await last_price(client.ib, contract)
    trade = client.ib.placeOrder(contract, LimitOrder("BUY", 100, round(price * 0.9, 2), orderRef="cid-away"))
    await wait_until(lambda: trade.orderStatus.status == "Submitted")
    assert sim.fill_while_disconnected() == {"ok": True, "armed": True}
    client.ib.disconnect()
    await wait_until(lambda: not sim.status()["open_orders"], what="the order to fill while away")
    again = await connect(sim.port, 9)  # its startup sync asks for executions
    try:
        fills = [f for f in again.ib.fills() if f.execution.orderRef == "cid-away"]
        assert sum(f.execution.shares for f in fills) == 100
        assert {p.contract.conId: p.position for p in again.ib.positions()}[265598] == 100
        assert "fill_while_disconnected" not in sim.status()["faults"]  # one shot
    finally:
        again.ib.disconnect()
