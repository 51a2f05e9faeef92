"""Crash-only recovery with the real simulator, bridge and executor: SIGKILLs, bridge restarts, fills while away,
the persisted kill switch, and a ledger that stays consistent whatever instant the executor dies at."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.support.wait import wait_for

from .cluster import (
    REPO,
    Cluster,
    broker_positions,
    check_ledger_against_broker,
    our_broker_fills,
    running_cluster,
)

D = Decimal


def order_row(c: Cluster, coid: str) -> sqlite3.Row:
    row: sqlite3.Row = c.ledger("SELECT * FROM orders WHERE client_order_id=?", (coid,))[0]
    return row


def booked_in_full(c: Cluster, coid: str) -> bool:
    """FILLED, and every fill booked (the broker's FILLED status may arrive before its last fills)."""
    row = order_row(c, coid)
    return bool(row["status"] == "FILLED" and row["settled"])


def sim_orders_with_ref(c: Cluster, coid: str) -> list[dict[str, Any]]:
    return [o for o in c.sim.status()["open_orders"] if o["order_ref"] == coid]


def test_executor_killed_between_writing_an_order_and_the_reply_places_it_once(short_tmp: Path) -> None:
    with running_cluster(short_tmp) as c:
        c.signal(
            "bridge", signal.SIGSTOP
        )  # the PlaceOrder will wait in the bridge's socket: no reply can come
        try:
            rows = c.target_until("AAPL", 0.5, lambda: c.orders("AAPL"), timeout=10)
            time.sleep(0.3)
            c.kill("executor")
        finally:
            c.signal("bridge", signal.SIGCONT)
        coid = rows[0]["client_order_id"]
        assert order_row(c, coid)["status"] == "NEW"  # written, never acknowledged
        c.start("executor")
        c.wait_executor_ready()
        c.target_until("AAPL", 0.5, lambda: booked_in_full(c, coid), timeout=20)
        assert [r["client_order_id"] for r in c.orders("AAPL")] == [coid]
        broker = our_broker_fills(c, coid)
        assert len({f.order_id for f in broker}) == 1  # exactly one order at the simulator
        booked = c.ledger("SELECT exec_id, quantity FROM fills WHERE client_order_id=?", (coid,))
        assert sorted(r["exec_id"] for r in booked) == sorted(f.exec_id for f in broker)
        assert sum(D(r["quantity"]) for r in booked) == D(order_row(c, coid)["quantity"])
        wait_for(
            "the broker position",
            lambda: broker_positions(c).get("AAPL") == D(order_row(c, coid)["filled"]),
            10,
        )


def test_bridge_restart_then_a_fill_while_it_is_away_are_reconciled_once(short_tmp: Path) -> None:
    # a slow simulated market (a price every 5 s) and a big order: 500 shares fill on arrival, 500 more per tick,
    # so the order works for ~30 s
    slow = ("--tick-interval", "5")
    with running_cluster(short_tmp, sim_args=slow, env={"POSITION_NOTIONAL": "2000000"}) as c:

        def partly_filled() -> sqlite3.Row | None:
            rows = c.orders("AAPL")
            return rows[0] if rows and rows[0]["status"] == "PARTIALLY_FILLED" else None

        coid = c.target_until("AAPL", 0.5, partly_filled, timeout=15)["client_order_id"]
        (at_sim,) = sim_orders_with_ref(c, coid)

        before = c.status()["reconciliations"]
        c.kill("bridge")  # a crash: the new bridge must find the order by its orderRef
        c.start("bridge")
        c.wait_bridge_ready()
        wait_for(
            "a reconciliation that sees the working order",
            lambda: c.status()["reconciliations"] > before and c.status()["last_reconcile_open_orders"] >= 1,
            15,
        )
        row = order_row(c, coid)
        assert (row["status"], row["broker_order_id"]) == ("PARTIALLY_FILLED", at_sim["order_id"])
        assert len(sim_orders_with_ref(c, coid)) == 1 and len(c.orders()) == 1

        c.sim.ctl("fill-while-disconnected")  # armed: the next client to leave gets its orders filled
        c.sim.ctl("drop")
        wait_for("the fill made while the bridge was away", lambda: booked_in_full(c, coid), 20)
        wait_for(
            "a reconciliation after the reconnect", lambda: c.status()["reconciliations"] > before + 1, 15
        )
        broker = our_broker_fills(c, coid)
        booked = c.ledger("SELECT exec_id, quantity FROM fills WHERE client_order_id=?", (coid,))
        assert sorted(r["exec_id"] for r in booked) == sorted(f.exec_id for f in broker)
        qty = D(order_row(c, coid)["quantity"])
        assert sum(D(r["quantity"]) for r in booked) == qty == D(order_row(c, coid)["filled"])
        assert broker_positions(c) == {"AAPL": qty}
        assert c.status()["halted"] is False  # the ledger and the broker agree


def test_the_daily_loss_limit_halts_and_stays_halted_across_a_restart(short_tmp: Path) -> None:
    # a slow simulated clock (2x): one share's price barely moves while the executor restarts
    with running_cluster(short_tmp, speed=2.0, env={"DAILY_LOSS_LIMIT": "0.5"}) as c:
        # one share: the 1.00 minimum commission outweighs any price move, so today's P&L is about -1.00
        c.target_until("AAPL", 0.001, lambda: c.status()["halted"], timeout=15)
        status = c.status()
        assert status["halt_source"] == "daily_loss" and D(status["daily_pnl"]) <= D("-0.5")
        c.kill("executor")
        c.start("executor")
        status = c.wait_executor_ready()
        assert status["halted"] and status["state"] == "HALTED" and "daily loss" in status["halt_reason"]
        c.publish_target("MSFT", 0.3)
        wait_for("the halt to refuse new risk", lambda: "halted" in c.status()["last_rejection"], 10)
        assert c.orders("MSFT") == []
        resume = subprocess.run(
            [str(REPO / "bin" / "trader"), "resume"], env=c.env, capture_output=True, text=True, timeout=30
        )
        assert resume.returncode == 1 and "still beyond" in resume.stderr
        assert c.status()["halted"]


def test_the_ledger_stays_consistent_when_the_executor_is_killed_at_random_during_fills(
    short_tmp: Path,
) -> None:
    rng = random.Random(20261121)
    # flipping $450k positions at 60x costs more than the default daily loss limit: lift it for this test
    with running_cluster(short_tmp, env={"DAILY_LOSS_LIMIT": "100000000"}) as c:
        for weight in (0.9, -0.9, 0.6):  # each flip is thousands of shares: a burst of 500-share fills
            deadline = time.monotonic() + rng.uniform(0.3, 1.5)
            while time.monotonic() < deadline:
                c.publish_target("AAPL", weight)
                c.publish_target("MSFT", -weight)
                time.sleep(0.05)
            c.kill("executor")  # wherever it is: mid-transaction, mid-send, mid-reconcile
            c.start("executor")
            c.wait_executor_ready()

        def settled() -> bool:
            c.publish_target("AAPL", 0.6)
            c.publish_target("MSFT", -0.6)
            working = int(c.ledger("SELECT COUNT(*) AS n FROM orders WHERE settled = 0")[0]["n"])
            return working == 0 and int(c.status()["reconciliations"]) >= 2

        wait_for("every order settled", settled, 30, interval=0.3)
        assert c.status()["halted"] is False
        check_ledger_against_broker(c)
