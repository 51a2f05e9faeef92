"""The money path against what IB and ib_async really do (real simulator, bridge and executor, real SQLite):
statuses the client library makes up, a halt racing a placement, a human's order behind the stack's back, a
flatten during a working close, slow answers during reconciliation, execution corrections, an order of ours the
ledger never saw, holdings the stack does not trade, and a Gateway whose next order id rolled back."""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.messages import (
    AcceptBrokerRequest,
    FlattenRequest,
    HaltRequest,
    PlaceOrder,
    ReconcileRequest,
    ResumeRequest,
)
from tests.support.wait import wait_for

from .cluster import Cluster, broker_positions, check_ledger_against_broker, running_cluster

D = Decimal
SLOW = ("--tick-interval", "5")  # a price every 5 s: a big order fills 500 shares on arrival, then 500 a tick
BIG = {"POSITION_NOTIONAL": "2000000"}
WORKING = ("NEW", "SUBMITTED", "PARTIALLY_FILLED", "PENDING_CANCEL", "INACTIVE")


def working(c: Cluster, symbol: str) -> sqlite3.Row | None:
    rows = c.orders(symbol)
    return rows[-1] if rows and rows[-1]["status"] in ("SUBMITTED", "PARTIALLY_FILLED") else None


def audit(c: Cluster) -> dict[str, Any]:
    result: dict[str, Any] = c.sim.ctl("audit")
    return result


def sim_orders(c: Cluster, symbol: str) -> list[dict[str, Any]]:
    return [o for o in audit(c)["orders"] if o["symbol"] == symbol and str(o["orderRef"]).startswith("ex-")]


def reconciled_after(c: Cluster, count: int, timeout: float = 20) -> None:
    wait_for(f"{count} more reconciliations", lambda: c.status()["reconciliations"] >= count, timeout)


def settled_flat_or_done(c: Cluster) -> bool:
    return not any(r["status"] in WORKING for r in c.orders())


def test_an_informational_error_on_a_live_order_never_doubles_it(short_tmp: Path) -> None:
    with running_cluster(short_tmp, sim_args=SLOW, env=BIG) as c:
        row = c.target_until("AAPL", 0.5, lambda: working(c, "AAPL"), timeout=20)
        # 10349 "TIF set to DAY by preset": ib_async marks the order Cancelled; the Gateway goes on working it
        c.sim.ctl("error", "10349", str(row["broker_order_id"]))
        wait_for(
            "the made-up cancel", lambda: c.status()["counters"].get("unconfirmed_final_status", 0) >= 1, 10
        )
        seen = c.status()["reconciliations"]
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:  # the next bars ask for the same target again and again
            c.publish_target("AAPL", 0.5)
            time.sleep(0.2)
        reconciled_after(c, seen + 1)
        rows = c.orders("AAPL")
        assert [r["client_order_id"] for r in rows] == [row["client_order_id"]]
        assert rows[0]["status"] in WORKING, dict(rows[0])
        assert len(sim_orders(c, "AAPL")) == 1  # one order at the broker, never a second
        # the order is still the stack's to cancel
        c.target_until("AAPL", 0.0, lambda: c.orders("AAPL")[0]["status"] == "CANCELLED", timeout=20)
        wait_for("the broker to hold no order of ours", lambda: not c.sim.status()["open_orders"], 10)


def test_a_halt_stops_an_order_whose_placement_is_in_flight(short_tmp: Path) -> None:
    with running_cluster(short_tmp) as c:
        c.kill("bridge")
        c.sim.ctl("delay", "contract-details", "4")  # the restarted bridge waits for its contracts
        c.start("bridge")
        c.wait_bridge_ready()
        rows = c.target_until("AAPL", 0.5, lambda: c.orders("AAPL"), timeout=10)
        coid = rows[0]["client_order_id"]
        assert rows[0]["status"] == "NEW"  # its placement is in flight at the bridge
        c.request("executor", HaltRequest(reason="halt during a placement"))
        c.sim.ctl("delay", "contract-details", "0")
        wait_for("the order to end", lambda: c.orders("AAPL")[0]["status"] in ("CANCELLED", "REJECTED"), 20)
        time.sleep(3)  # a placement that slipped through would be working (or filling) by now
        assert [o for o in c.sim.status()["open_orders"] if o["order_ref"] == coid] == []
        assert broker_positions(c).get("AAPL", D(0)) == 0
        assert c.status()["halted"]


def test_a_mismatch_blocks_the_symbol_until_the_operator_accepts_the_broker(short_tmp: Path) -> None:
    with running_cluster(short_tmp) as c:
        c.target_until(
            "AAPL", 0.3, lambda: broker_positions(c).get("AAPL", 0) > 0 and settled_flat_or_done(c)
        )
        held = broker_positions(c)["AAPL"]
        c.sim.ctl("manual-order", "AAPL", "SELL", "100")  # a human sells 100 in TWS
        wait_for("the mismatch halt", lambda: c.status()["mismatched"].get("AAPL"), 20)
        st = c.status()
        numbers = {k: D(v) for k, v in st["mismatched"]["AAPL"].items()}
        assert st["halted"] and numbers == {"ledger": held, "broker": held - 100}
        # a flat target must not be sized from the wrong ledger: nothing at all is ordered in AAPL
        for _ in range(10):
            c.publish_target("AAPL", 0.0)
            time.sleep(0.2)
        assert len(c.orders("AAPL")) == 1 and broker_positions(c)["AAPL"] == held - 100
        side_by_side = c.request("executor", ReconcileRequest())
        aapl = next(r for r in side_by_side["symbols"] if r["symbol"] == "AAPL")
        assert (D(aapl["ledger_quantity"]), D(aapl["broker_quantity"]), aapl["mismatch"]) == (
            held,
            held - 100,
            True,
        )
        with pytest.raises(RuntimeError, match="--reason"):  # refused, nothing changed
            c.request("executor", AcceptBrokerRequest(symbol="AAPL", reason=" "), 5)
        with pytest.raises(RuntimeError, match="not traded"):
            c.request("executor", AcceptBrokerRequest(symbol="ZZZZ", reason="typo"), 5)
        assert c.status()["mismatched"]["AAPL"]
        done = c.request(
            "executor", AcceptBrokerRequest(symbol="AAPL", reason="sold by hand", operator="test"), 10
        )
        assert (D(done["ledger_before"]), D(done["broker"])) == (held, held - 100)
        assert c.status()["mismatched"] == {}
        c.request("executor", ResumeRequest())
        c.target_until(
            "AAPL", 0.0, lambda: broker_positions(c).get("AAPL", D(0)) == 0 and settled_flat_or_done(c)
        )
        assert broker_positions(c).get("AAPL", D(0)) == 0  # flat, never short
        reconciled_after(c, c.status()["reconciliations"] + 1)
        assert not c.status()["halted"]
        check_ledger_against_broker(c)


def test_flatten_during_a_working_close_ends_flat_and_never_crosses_zero(short_tmp: Path) -> None:
    quick = ("--tick-interval", "1")  # 500 shares on arrival, then 500 a second
    with running_cluster(short_tmp, sim_args=quick, env={"POSITION_NOTIONAL": "600000"}) as c:
        c.target_until("AAPL", 1.0, lambda: broker_positions(c).get("AAPL", 0) >= 1500, 30)
        c.target_until("AAPL", 0.0, lambda: working(c, "AAPL") and c.orders("AAPL")[-1]["side"] == "SELL", 30)
        c.request("executor", FlattenRequest(symbols=["AAPL"]))  # while the closing order works
        lowest = D(1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            c.publish_target("AAPL", 0.5)  # the strategy keeps asking for the opposite: flatten overrides it
            pos = broker_positions(c).get("AAPL", D(0))
            lowest = min(lowest, pos)
            if pos == 0 and c.status()["flattening"].get("AAPL", {}).get("state") == "flat":
                break
            time.sleep(0.1)
        assert broker_positions(c).get("AAPL", D(0)) == 0 and lowest >= 0
        assert c.status()["flattening"]["AAPL"]["state"] == "flat"
        check_ledger_against_broker(c)


def test_a_slow_executions_reply_never_closes_an_order_acknowledged_meanwhile(short_tmp: Path) -> None:
    with running_cluster(short_tmp, sim_args=SLOW, env=BIG) as c:
        c.sim.ctl("delay", "executions", "8")  # longer than the reconciler's grace for fresh orders
        time.sleep(0.5)  # a reconciliation has taken its open-order snapshot and waits for the executions
        row = c.target_until("AAPL", 0.5, lambda: working(c, "AAPL"), timeout=20)
        seen = c.status()["reconciliations"]
        reconciled_after(c, seen + 1, timeout=40)
        rows = c.orders("AAPL")
        assert [r["client_order_id"] for r in rows] == [row["client_order_id"]], [dict(r) for r in rows]
        assert len(sim_orders(c, "AAPL")) == 1
        c.sim.ctl("delay", "executions", "0")


def test_a_corrected_execution_replaces_the_one_it_corrects(short_tmp: Path) -> None:
    with running_cluster(short_tmp) as c:
        c.target_until(
            "AAPL", 0.1, lambda: broker_positions(c).get("AAPL", 0) > 0 and settled_flat_or_done(c)
        )
        first = c.ledger("SELECT * FROM fills ORDER BY applied_ns")[0]
        corrected_price = str((D(first["price"]) - D("0.10")).quantize(D("0.01")))
        c.sim.ctl("correct-execution", first["exec_id"], corrected_price)
        wait_for(
            "the correction booked",
            lambda: c.ledger("SELECT * FROM fills WHERE replaced_by IS NOT NULL"),
            20,
        )
        reconciled_after(c, c.status()["reconciliations"] + 1)
        old = c.ledger("SELECT * FROM fills WHERE exec_id=?", (first["exec_id"],))[0]
        new = c.ledger("SELECT * FROM fills WHERE exec_id=?", (old["replaced_by"],))[0]
        assert D(new["price"]) == D(corrected_price) and new["quantity"] == first["quantity"]
        assert old["exec_id"].rpartition(".")[0] == new["exec_id"].rpartition(".")[0]
        assert not c.status()["halted"]
        check_ledger_against_broker(c)  # cash follows the corrected price, the fill counted once


def test_an_order_of_ours_the_ledger_never_saw_is_adopted_not_ordered_again(short_tmp: Path) -> None:
    with running_cluster(short_tmp, sim_args=SLOW, env=BIG) as c:
        # as if the power went out right after sending: at the broker, never in the ledger
        lost = PlaceOrder(client_order_id="ex-20260101T000000-MSFT-0badc0de", symbol="MSFT", side="BUY",
                          quantity=D(700), order_type="MKT")  # fmt: skip
        c.request("bridge", lost)
        wait_for("the order adopted", lambda: c.ledger("SELECT * FROM orders WHERE client_order_id=?",
                                                       (lost.client_order_id,)), 20)  # fmt: skip
        assert c.status()["counters"].get("orders_adopted", 0) >= 1
        assert "adopted" in c.log("executor")
        reconciled_after(c, c.status()["reconciliations"] + 1)
        assert not c.status()["halted"]
        check_ledger_against_broker(c)


def test_holdings_the_stack_does_not_trade_are_shown_and_never_halt(short_tmp: Path) -> None:
    with running_cluster(short_tmp) as c:
        c.target_until(
            "AAPL", 0.1, lambda: broker_positions(c).get("AAPL", 0) > 0 and settled_flat_or_done(c)
        )
        held = broker_positions(c)["AAPL"]
        c.sim.ctl("holding", "AAPL", "2", "OPT")
        c.sim.ctl("holding", "ACME", "100", "STK")
        c.sim.ctl("holding", "EUR", "1000", "CASH")
        reconciled_after(c, c.status()["reconciliations"] + 2)
        st = c.status()
        assert not st["halted"] and st["mismatched"] == {}
        kinds = {(h["symbol"], h["sec_type"]) for h in st["other_holdings"]}
        assert {("AAPL", "OPT"), ("ACME", "STK"), ("EUR", "CASH")} <= kinds
        aapl = next(r for r in c.request("executor", ReconcileRequest())["symbols"] if r["symbol"] == "AAPL")
        assert D(aapl["broker_quantity"]) == held and not aapl["mismatch"]  # the option is not added in


def test_a_restarted_bridge_never_reuses_an_order_id_after_the_gateway_rolled_back(short_tmp: Path) -> None:
    with running_cluster(short_tmp) as c:
        c.target_until(
            "AAPL", 0.1, lambda: broker_positions(c).get("AAPL", 0) > 0 and settled_flat_or_done(c)
        )
        c.sim.ctl("next-id-rollback", "1")
        c.kill("bridge")
        c.start("bridge")
        c.wait_bridge_ready()
        c.target_until(
            "MSFT", 0.1, lambda: broker_positions(c).get("MSFT", 0) > 0 and settled_flat_or_done(c)
        )
        ids = [o["orderId"] for o in audit(c)["orders"]]
        assert len(ids) == len(set(ids))
        assert all(r["status"] == "FILLED" for r in c.orders())
        check_ledger_against_broker(c)
