"""The simulated account behaves like an IB account, as an unmodified ib_async client sees it: an execution
correction replaces the execution, a human's TWS order moves the position behind the client's back, holdings the
stack does not trade come per contract, the audit tells the broker's side, a reused order id after a nextValidId
rollback gets 103, and an order-scoped notice (10349, 161, 10311) leaves the order working."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock, Trade

from procs.gateway_sim.inprocess import GatewaySim
from tests.gateway_sim.sim_harness import Client, connect, wait_until

pytestmark = pytest.mark.timeout(60)

AAPL, MSFT, KO, PEP = (
    Stock("AAPL", "SMART", "USD", conId=265598),
    Stock("MSFT", "SMART", "USD", conId=272093),
    Stock("KO", "SMART", "USD", conId=90000026),
    Stock("PEP", "SMART", "USD", conId=90000006),
)
CASH = Decimal(1_000_000)  # the simulator's opening cash


async def filled(trade: Trade) -> None:
    await wait_until(lambda: trade.orderStatus.status == "Filled", timeout=20, what="the order to fill")


async def resting(trade: Trade) -> None:
    await wait_until(lambda: trade.orderStatus.status == "Submitted", timeout=20, what="the order to work")


async def last_price(ib: IB, contract: Stock) -> float:
    [ticker] = await ib.reqTickersAsync(contract)
    return float(ticker.last)


async def test_a_correction_replaces_the_execution_and_the_account_follows(sim: GatewaySim) -> None:
    client = await connect(sim.port, 3)
    try:
        ib = client.ib
        trade = ib.placeOrder(AAPL, MarketOrder("BUY", 100, orderRef="ex-corrected"))
        await filled(trade)
        [first] = trade.fills
        old_id = first.execution.execId
        price = Decimal(repr(first.execution.price)) + Decimal("0.50")

        answer = sim.correct_execution(old_id, price, 60)
        new_id = answer["exec_id"]
        assert new_id == old_id.rpartition(".")[0] + ".02" and answer["replaced"] == old_id
        await wait_until(
            lambda: new_id in {f.execution.execId for f in ib.fills()}, what="the live correction"
        )

        listed = [f for f in await ib.reqExecutionsAsync() if f.execution.orderRef == "ex-corrected"]
        assert [(f.execution.execId, f.execution.shares, f.execution.price) for f in listed] == [
            (new_id, 60.0, float(price))
        ]
        positions = {p.contract.conId: p.position for p in await ib.reqPositionsAsync()}
        assert positions[265598] == 60
        summary = {v.tag: v.value for v in await ib.accountSummaryAsync() if v.currency == "USD"}
        commission = Decimal("1.00")  # 60 shares: the minimum
        assert Decimal(summary["TotalCashValue"]) == (CASH - 60 * price - commission).quantize(
            Decimal("0.01")
        )
        with pytest.raises(ValueError, match="already corrected"):
            sim.correct_execution(old_id, price)
    finally:
        client.ib.disconnect()


async def test_a_manual_order_moves_the_position_and_only_client_0_hears_it_live(sim: GatewaySim) -> None:
    master = await connect(sim.port, 0)
    client = await connect(sim.port, 4)
    try:
        answer = sim.manual_order("MSFT", "BUY", 30)
        assert answer["order_id"] < 0 and answer["status"] == "Filled" and answer["position"] == "30"
        await wait_until(
            lambda: {p.contract.conId: p.position for p in client.ib.positions()}.get(272093) == 30,
            what="the client to see the position move",
        )
        await wait_until(lambda: master.ib.fills(), what="client 0 to hear the fill live")
        await client.ib.reqCurrentTimeAsync()
        assert not client.ib.fills()  # a TWS order's live execDetails go to client 0, not to every client
        listed = [f for f in await client.ib.reqExecutionsAsync() if f.contract.symbol == "MSFT"]
        assert [(f.execution.clientId, f.execution.orderRef, f.execution.shares) for f in listed] == [
            (0, "", 30.0)
        ]
        done = await client.ib.reqCompletedOrdersAsync(False)
        assert [(t.order.orderRef, t.orderStatus.status) for t in done if t.contract.symbol == "MSFT"] == [
            ("", "Filled")
        ]
    finally:
        client.ib.disconnect()
        master.ib.disconnect()


async def test_untraded_holdings_come_per_contract_and_quantity_0_removes_them(sim: GatewaySim) -> None:
    client = await connect(sim.port, 5)
    try:
        ib = client.ib
        await filled(ib.placeOrder(AAPL, MarketOrder("BUY", 10)))
        option = sim.holding("AAPL", 2, "OPT")
        euro = sim.holding("EUR", 1000, "CASH")
        held = sim.holding("ZZHELD", 7)
        positions = {p.contract.conId: p for p in await ib.reqPositionsAsync()}
        assert len({265598, option["con_id"], euro["con_id"], held["con_id"]}) == 4
        stock = positions[265598]
        assert (stock.contract.secType, stock.position) == ("STK", 10)  # the option is never added into it
        opt = positions[option["con_id"]]
        assert (opt.contract.symbol, opt.contract.secType, opt.position) == ("AAPL", "OPT", 2)
        assert (opt.contract.right, opt.contract.multiplier, opt.contract.localSymbol) == (
            "C",
            "100",
            option["local_symbol"],
        )
        assert opt.contract.strike > 0 and len(opt.contract.lastTradeDateOrContractMonth) == 8
        fx = positions[euro["con_id"]]
        assert (fx.contract.symbol, fx.contract.secType, fx.contract.currency, fx.contract.localSymbol) == (
            "EUR",
            "CASH",
            "USD",
            "EUR.USD",
        )
        assert fx.position == 1000 and positions[held["con_id"]].contract.symbol == "ZZHELD"
        wanted = {265598, option["con_id"], euro["con_id"], held["con_id"]}
        await wait_until(lambda: wanted <= {i.contract.conId for i in ib.portfolio()}, what="portfolio lines")
        [line] = [i for i in ib.portfolio() if i.contract.conId == option["con_id"]]
        assert line.contract.secType == "OPT" and line.marketValue == pytest.approx(
            2 * 100 * line.marketPrice
        )

        sim.holding("AAPL", 0, "OPT")
        await wait_until(
            lambda: option["con_id"] not in {p.contract.conId for p in ib.positions()},
            what="the option to go",
        )
        await wait_until(
            lambda: option["con_id"] not in {i.contract.conId for i in ib.portfolio()},
            what="the option's portfolio line to go",
        )
        left = {p.contract.conId: p.position for p in await ib.reqPositionsAsync()}
        assert left == {265598: 10, euro["con_id"]: 1000, held["con_id"]: 7}
        with pytest.raises(ValueError, match="manual-order AAPL"):
            sim.holding("AAPL", 5)  # AAPL stock trades here: a holding would be the same contract
    finally:
        client.ib.disconnect()


async def test_the_audit_tells_every_order_execution_position_and_placement(sim: GatewaySim) -> None:
    first = await connect(sim.port, 6)
    second = await connect(sim.port, 7)
    try:
        ib = first.ib
        before = time.time_ns()
        await filled(ib.placeOrder(KO, MarketOrder("BUY", 100, orderRef="ex-1")))
        working = ib.placeOrder(KO, LimitOrder("BUY", 5, 1.00, orderRef="ex-2"))
        await resting(working)
        working.order.lmtPrice = 1.01
        ib.placeOrder(KO, working.order)  # a modify: the same order id, not a new placement
        # the same client order id sent twice (the simulator's order ids are account-wide: pick a free one)
        twice = second.ib.placeOrder(KO, LimitOrder("BUY", 5, 1.00, orderRef="ex-2", orderId=1000))
        await resting(twice)
        await filled(ib.placeOrder(KO, MarketOrder("SELL", 100, orderRef="ex-3")))
        audit = sim.audit()
        after = time.time_ns()

        assert set(audit) == {"ok", "orders", "executions", "positions", "cash", "max_abs_position"}
        orders = sorted(audit["orders"], key=lambda o: o["received_ns"])
        assert [(o["orderRef"], o["clientId"], o["placements"]) for o in orders] == [
            ("ex-1", 6, 1),
            ("ex-2", 6, 2),
            ("ex-2", 7, 2),
            ("ex-3", 6, 1),
        ]
        assert all(before <= o["received_ns"] <= after for o in orders)
        ex1, modified, _, ex3 = orders
        assert (ex1["status"], ex1["filled"], ex1["quantity"], ex1["position_before"]) == (
            "Filled",
            "100",
            "100",
            "0",
        )
        assert (ex3["action"], ex3["position_before"], ex3["orderType"]) == ("SELL", "100", "MKT")
        assert (modified["status"], modified["lmtPrice"], modified["filled"]) == ("Submitted", "1.01", "0")
        executions = audit["executions"]
        assert [(e["orderRef"], e["side"], e["quantity"], e["replaced_by"]) for e in executions] == [
            ("ex-1", "BOT", "100", None),
            ("ex-3", "SLD", "100", None),
        ]
        bought, sold = (Decimal(e["price"]) for e in executions)
        assert Decimal(audit["cash"]) == CASH - 100 * bought + 100 * sold - 2 * Decimal("1.00")
        assert audit["positions"] == [
            {"symbol": "KO", "secType": "STK", "conId": 90000026, "quantity": "0", "avgCost": "0"}
        ]
        assert audit["max_abs_position"] == {"KO": "100"}

        correction = sim.correct_execution(executions[0]["execId"], "-", 90)
        replaced = [e for e in sim.audit()["executions"] if e["replaced_by"]]
        assert [(e["execId"], e["replaced_by"]) for e in replaced] == [
            (executions[0]["execId"], correction["exec_id"])
        ]
    finally:
        first.ib.disconnect()
        second.ib.disconnect()


async def test_after_a_next_id_rollback_a_reused_order_id_gets_103_and_is_not_accepted(
    sim: GatewaySim,
) -> None:
    client: Client = await connect(sim.port, 8)
    first = client.ib.placeOrder(PEP, MarketOrder("BUY", 10, orderRef="ex-first"))
    await filled(first)
    client.ib.disconnect()
    sim.next_id_rollback(
        1
    )  # the fresh simulator's first nextValidId: the new session counts the same ids again
    again = await connect(sim.port, 8)
    try:
        second = again.ib.placeOrder(PEP, MarketOrder("BUY", 10, orderRef="ex-second"))
        assert second.order.orderId == first.order.orderId
        await wait_until(lambda: 103 in again.codes(), what="error 103")
        assert (first.order.orderId, 103, "Duplicate order id") in again.errors
        audit = sim.audit()
        assert [o["orderRef"] for o in audit["orders"]] == ["ex-first"]
        assert [e["orderRef"] for e in audit["executions"]] == ["ex-first"]
        assert not sim.status()["open_orders"]
    finally:
        again.ib.disconnect()


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (10349, "Order TIF was set to DAY based on order preset."),
        (161, "Cancel attempted when order is not in a cancellable state."),
        (10311, "This order will be directly routed to NASDAQ."),
    ],
)
async def test_an_order_scoped_notice_leaves_the_order_working_and_open_orders_say_so(
    sim: GatewaySim, code: int, text: str
) -> None:
    client = await connect(sim.port, 9)
    other = await connect(sim.port, 10)
    try:
        ib = client.ib
        price = await last_price(ib, AAPL)
        trade = ib.placeOrder(AAPL, LimitOrder("BUY", 10, round(price * 0.8, 2), orderRef="ex-rest"))
        await resting(trade)
        oid = trade.order.orderId
        sim.error(code, oid)
        await wait_until(lambda: code in client.codes(), what=f"error {code}")
        [(req_id, _, message)] = [e for e in client.errors if e[1] == code]
        assert req_id == oid and message.startswith(text)
        await other.ib.reqCurrentTimeAsync()
        assert code not in other.codes()  # an order's error goes to the order's client only
        assert [o["order_id"] for o in sim.status()["open_orders"]] == [oid]  # still working at the Gateway
        listed = await ib.reqAllOpenOrdersAsync()
        assert [t.order.orderId for t in listed] == [oid]
        # ib_async marks the order Cancelled on such an error; the answer's orderStatus sets it right again
        assert trade.orderStatus.status == "Submitted"
        ib.cancelOrder(trade.order)
    finally:
        client.ib.disconnect()
        other.ib.disconnect()
