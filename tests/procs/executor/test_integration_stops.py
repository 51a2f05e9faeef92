"""Protective stops held at the broker (real simulator, bridge and executor): a fill creates the stop, partial fills
and reductions resize it, a human's cancel in TWS is repaired within one reconciliation (halted too), a bridge
SIGKILL and a Gateway drop leave exactly one stop, a gap fills it and the position is flat with the fill booked once."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.messages import FlattenRequest, HaltRequest, OpenOrdersRequest, PositionsRequest, ResumeRequest
from tests.support.wait import wait_for

from .cluster import Cluster, broker_positions, running_cluster

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


def sim_view(c: Cluster, symbol: str) -> tuple[Decimal, list[dict[str, Any]]]:
    """The simulator's own position in `symbol` and its working stops of ours (straight from the broker's book)."""
    st = c.sim.status()
    held = D(st["positions"].get(symbol, "0"))
    stops = [o for o in st["open_orders"] if o["symbol"] == symbol and o["order_ref"].startswith("st-")]
    return held, stops


def test_trailing_stop_moves_only_in_the_positions_favour_and_a_gap_fills_it(short_tmp: Path) -> None:
    env = {"TRAILING_STOP_PERCENT": "8", "POSITION_NOTIONAL": "40000"}
    with running_cluster(short_tmp, sim_args=QUICK_TICKS, env=env) as c:
        c.target_until("AAPL", 1.0, lambda: one_stop_of_position(c, "AAPL"), 30)
        ref = one_stop_of_position(c, "AAPL")["client_order_id"]  # type: ignore[index]

        def trigger() -> Decimal | None:
            _, stops = sim_view(c, "AAPL")
            mine = [o for o in stops if o["order_ref"] == ref]
            return D(mine[0]["aux"]) if mine and mine[0]["aux"] else None

        first = wait_for("the TRAIL's first trigger", trigger, 10)
        assert mine_type(c, ref) == "TRAIL"
        # price up 15%: the trigger follows it up
        c.sim.ctl("gap", "AAPL", "15")
        raised = wait_for("the trigger raised", lambda: (t := trigger()) and t > first * D("1.1") and t, 10)

        # bin/trader positions shows it: TRAIL, the live trigger from the broker, its size, its state
        def shown() -> dict[str, Any] | None:
            rows = [r for r in c.request("executor", PositionsRequest()) if r["symbol"] == "AAPL"]
            return rows[0] if rows and rows[0]["stop_trigger"].split(" ")[0] not in ("", str(first)) else None

        row = wait_for("the live trigger in the positions view", shown, 15)
        assert (
            row["stop_type"] == "TRAIL"
            and row["stop_state"] == "SUBMITTED"
            and "trail 8%" in row["stop_trigger"]
        )
        assert D(row["stop_quantity"]) == D(row["quantity"]) > 0
        # price down 3% (less than the trail): the trigger stays where it was, never lower; the stop still works
        c.sim.ctl("gap", "AAPL", "-3")
        seen = []
        for _ in range(15):
            t = trigger()
            assert t is not None, "the trailing stop went away on a dip smaller than its trail"
            seen.append(t)
            time.sleep(0.1)
        assert min(seen) >= raised and seen == sorted(seen)
        # an overnight gap through the trigger: filled, flat, booked once
        c.sim.ctl("gap", "AAPL", "-25")
        wait_for("flat at the broker", lambda: broker_positions(c).get("AAPL", D(0)) == 0, 20)
        fills = [f for f in c.broker_fills() if f.client_order_id == ref]
        assert fills and all(f.price < raised for f in fills)  # beyond the trigger: the gap's price
        wait_for(
            "the stop's fills booked once",
            lambda: len(c.ledger("SELECT 1 FROM fills WHERE client_order_id = ?", (ref,))) == len(fills),
            20,
        )


def mine_type(c: Cluster, ref: str) -> str:
    return str(c.ledger("SELECT order_type FROM orders WHERE client_order_id = ?", (ref,))[0]["order_type"])


def test_flatten_leaves_no_stop_behind_and_cancels_it_only_once_flat(short_tmp: Path) -> None:
    env = {"STOP_LOSS_PERCENT": "5", "POSITION_NOTIONAL": "600000"}
    with running_cluster(short_tmp, sim_args=QUICK_TICKS, env=env) as c:

        def built() -> bool:
            # the stop first: the target was published an instant ago, and a ledger read before the executor has
            # written its order would find nothing unsettled; once a stop covers a position, that order is written
            if not one_stop_of_position(c, "AAPL"):
                return False
            return not c.ledger("SELECT 1 FROM orders WHERE settled = 0 AND client_order_id LIKE 'ex-%'")

        c.target_until("AAPL", 1.0, built, 40)
        assert broker_positions(c)["AAPL"] > 1000  # several partial fills to close: the flatten takes a while
        c.request("executor", FlattenRequest(symbols=["AAPL"]))
        # every look while shares are still held: the stop is still there (never cancelled before flat)
        looks = 0
        while True:
            held, stops = sim_view(c, "AAPL")
            if held == 0:
                break
            looks += 1
            assert stops, f"the stop was gone with {held} shares still held"
            assert looks < 300, "not flat within 30 s"
            time.sleep(0.1)
        assert looks >= 3  # the flatten was seen in progress, not only its end
        wait_for(
            "no stop left at the broker",
            lambda: not sim_view(c, "AAPL")[1] and not stops_at_broker(c, "AAPL"),
            15,
        )
        wait_for("no stop working in the ledger", lambda: not c.ledger(
            "SELECT 1 FROM orders WHERE client_order_id LIKE 'st-%' AND status IN "
            "('NEW','SUBMITTED','PARTIALLY_FILLED','PENDING_CANCEL')"), 15)  # fmt: skip
        stop = c.ledger("SELECT * FROM orders WHERE client_order_id LIKE 'st-%' ORDER BY created_ns")[-1]
        assert stop["status"] == "CANCELLED" and D(stop["filled"]) == 0
        # and none comes back at the next reconciliation
        n = c.status()["reconciliations"]
        wait_for("a reconciliation after flat", lambda: c.status()["reconciliations"] >= n + 1, 15)
        assert not stops_at_broker(c, "AAPL")


def test_gateway_health_warns_of_a_position_left_without_its_stop(short_tmp: Path) -> None:
    import json
    import subprocess

    from .cluster import REPO

    env = {"STOP_LOSS_PERCENT": "5", "RECONCILE_SECONDS": "2"}
    with running_cluster(short_tmp, env=env) as c:

        def protected() -> bool:
            return one_stop_of_position(c, "AAPL") is not None

        c.target_until("AAPL", 0.2, protected, 30)

        def stops_line() -> dict[str, Any]:
            done = subprocess.run([str(REPO / "bin" / "gateway-health"), "--json"], env=c.env,
                                  capture_output=True, text=True, timeout=30)  # fmt: skip
            checks = json.loads(done.stdout)["checks"]
            line: dict[str, Any] = next(x for x in checks if x["name"] == "protective stops")
            return line

        assert stops_line()["status"] == "OK"
        c.sim.ctl("readonly", "on")  # the Gateway refuses every order now (321): a lost stop cannot come back
        (stop,) = stops_at_broker(c, "AAPL")
        c.sim.ctl("cancel-order", str(stop["order_id"]))  # a human cancels it in TWS
        warned = wait_for("the WARNING", lambda: (x := stops_line())["status"] == "WARNING" and x, 30)
        assert "AAPL" in warned["summary"] and warned["remedy"]
        c.sim.ctl("readonly", "off")
        wait_for("the stop back", protected, 30)
