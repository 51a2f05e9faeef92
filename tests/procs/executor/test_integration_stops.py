"""Protective stops held at the broker (real simulator, bridge and executor): a fill creates the stop, partial fills
and reductions resize it, a human's cancel in TWS is repaired within one reconciliation (halted too), a bridge
SIGKILL and a Gateway drop leave exactly one stop, a gap fills it and the position is flat with the fill booked once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.messages import HaltRequest, OpenOrdersRequest, ResumeRequest

from .cluster import Cluster, broker_positions, running_cluster, wait_for

D = Decimal
QUICK_TICKS = ("--tick-interval", "1")  # a big order fills 500 shares on arrival, then 500 every second


def stops_at_broker(c: Cluster, symbol: str) -> list[dict[str, Any]]:
    listed = c.request("bridge", OpenOrdersRequest(), timeout=5.0)
    return [
        o
        for o in listed
        if o["client_order_id"].startswith("st-")
        and o["symbol"] == symbol
        and o["status"] in ("SUBMITTED", "PARTIALLY_FILLED")
    ]


def one_stop_of_position(c: Cluster, symbol: str) -> dict[str, Any] | None:
    """The one stop at the broker when it matches the broker's position (side and size), else None."""
    pos = broker_positions(c).get(symbol, D(0))
    stops = stops_at_broker(c, symbol)
    if pos == 0 or len(stops) != 1:
        return None
    s = stops[0]
    right_side = s["side"] == ("SELL" if pos > 0 else "BUY")
    return s if right_side and D(s["quantity"]) - D(s["filled"]) == abs(pos) else None


def test_stop_follows_the_position_survives_cancel_restart_and_drop_and_fills_on_a_gap(
    short_tmp: Path,
) -> None:
    env = {"STOP_LOSS_PERCENT": "5", "POSITION_NOTIONAL": "300000"}
    with running_cluster(short_tmp, sim_args=QUICK_TICKS, env=env) as c:
        # a fill creates the stop; the partial fills (500 at a time) resize it until the position is whole
        sizes: set[Decimal] = set()

        def built() -> bool:
            s = one_stop_of_position(c, "AAPL")
            if s is not None:
                sizes.add(D(s["quantity"]))
            settled = not c.ledger("SELECT 1 FROM orders WHERE settled = 0 AND client_order_id LIKE 'ex-%'")
            return s is not None and settled and broker_positions(c)["AAPL"] > 500

        c.target_until("AAPL", 1.0, built, 60)
        stop = one_stop_of_position(c, "AAPL")
        assert stop is not None and stop["order_type"] == "STP"
        assert len(sizes) >= 1
        held = broker_positions(c)["AAPL"]
        first_id = stop["client_order_id"]
        rows = c.ledger("SELECT * FROM orders WHERE client_order_id = ?", (first_id,))
        avg = c.ledger("SELECT avg_cost FROM positions WHERE symbol = 'AAPL'")[0]["avg_cost"]
        assert D(rows[0]["limit_price"]) <= D(avg) * D("0.95") and rows[0]["order_type"] == "STP"

        # a human cancels it in TWS: re-created within one reconciliation (RECONCILE_SECONDS=3), with a ledger row
        c.sim.ctl("cancel-order", stop["order_id"])
        again = wait_for(
            "the stop re-created",
            lambda: (s := one_stop_of_position(c, "AAPL")) and s["client_order_id"] != first_id and s,
            15,
        )
        why = c.ledger("SELECT why FROM orders WHERE client_order_id = ?", (again["client_order_id"],))[0][
            "why"
        ]
        assert "re-created" in why

        # halted: a cancelled stop is still re-created (it only reduces risk)
        c.request("executor", HaltRequest(reason="test"))
        c.sim.ctl("cancel-order", again["order_id"])
        halted_stop = wait_for(
            "the stop re-created while halted",
            lambda: (
                (s := one_stop_of_position(c, "AAPL"))
                and s["client_order_id"] != again["client_order_id"]
                and s
            ),
            15,
        )
        assert c.status()["halted"]
        c.request("executor", ResumeRequest())

        # a bridge SIGKILL and a Gateway drop: exactly one stop afterwards, the same one
        c.kill("bridge")
        c.start("bridge")
        c.wait_bridge_ready()
        c.sim.ctl("drop")
        c.wait_bridge_ready(30)
        reconciled = c.status()["reconciliations"]
        wait_for(
            "two reconciliations after the drop", lambda: c.status()["reconciliations"] >= reconciled + 2, 20
        )
        after = one_stop_of_position(c, "AAPL")
        assert after is not None and after["client_order_id"] == halted_stop["client_order_id"]
        assert len(stops_at_broker(c, "AAPL")) == 1

        # a reduction resizes the stop (modified, never a second one)
        c.target_until(
            "AAPL",
            0.5,
            lambda: 0 < broker_positions(c)["AAPL"] < held and one_stop_of_position(c, "AAPL"),
            40,
        )
        resized = one_stop_of_position(c, "AAPL")
        assert resized is not None and resized["client_order_id"] == halted_stop["client_order_id"]

        # an overnight gap down through the trigger: the stop fills, the position is flat, its fill booked once
        c.publish_target("AAPL", 0.5)
        c.sim.ctl("gap", "AAPL", "-20")
        wait_for("flat at the broker", lambda: broker_positions(c).get("AAPL", D(0)) == 0, 20)
        stop_id = resized["client_order_id"]
        broker_fills = [f for f in c.broker_fills() if f.client_order_id == stop_id]
        wait_for(
            "the stop's fills booked",
            lambda: (
                len(c.ledger("SELECT 1 FROM fills WHERE client_order_id = ?", (stop_id,)))
                == len(broker_fills)
            ),
            20,
        )
        assert broker_fills and sum(f.quantity for f in broker_fills) > 0
        wait_for(
            "the ledger flat",
            lambda: D(c.ledger("SELECT quantity FROM positions WHERE symbol='AAPL'")[0]["quantity"]) == 0,
            20,
        )
        assert not stops_at_broker(c, "AAPL")
        # the same target again is not re-entered before the next bar
        c.publish_target("AAPL", 0.5)
        assert broker_positions(c).get("AAPL", D(0)) == 0
