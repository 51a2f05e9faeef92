"""A bad night for the Gateway, end to end: while the targets keep flipping (a burst of orders and partial fills each
time), the Gateway drops the socket, resets it, loses market data, loses and regains its link to IB, goes silent,
fills orders while the bridge is away, answers slowly, corrects an execution, sends an informational error that
ib_async turns into a cancel, shows a holding the stack does not trade, rolls its next order id back, and the
bridge and the executor are each SIGKILLed. Afterwards, with no
human help: trading resumes, no fill is lost or booked twice, no order reached the broker twice, the ledger
agrees with the broker, and nothing halted."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from shared.messages import HealthRequest
from tests.support.wait import wait_for

from .cluster import Cluster, check_ledger_against_broker, running_cluster

Fault = Callable[[Cluster], None]


def _drop(c: Cluster) -> None:
    c.sim.ctl("drop")  # the Gateway closes the API socket (FIN)


def _reset(c: Cluster) -> None:
    c.sim.ctl("reset")  # a connection reset (RST)


def _market_data_lost(c: Cluster) -> None:
    c.sim.ctl("error", "1101")  # reconnected to IB, market data lost: every subscription again


def _link_lost_then_back(c: Cluster) -> None:
    c.sim.ctl("error", "1100")  # IB unreachable: orders refused
    time.sleep(1.0)
    c.sim.ctl("error", "1102")


def _silent(c: Cluster) -> None:
    c.sim.ctl("silent", "on")  # a hung Gateway: the heartbeat goes unanswered
    time.sleep(2.5)
    c.sim.ctl("silent", "off")


def _fills_while_away(c: Cluster) -> None:
    c.sim.ctl("fill-while-disconnected")  # the working orders fill while nobody listens
    c.sim.ctl("drop")


def _bridge_killed(c: Cluster) -> None:
    c.kill("bridge")
    c.start("bridge")


def _executor_killed(c: Cluster) -> None:
    c.kill("executor")
    c.start("executor")


def _made_up_cancel(c: Cluster) -> None:
    # an informational order-scoped code (10349, TIF set by preset): ib_async marks the order Cancelled on its own
    live = [o for o in c.sim.status()["open_orders"] if o["order_ref"].startswith("ex-")]
    if live:
        c.sim.ctl("error", "10349", str(live[0]["order_id"]))


def _correction(c: Cluster) -> None:
    ours = [e for e in c.sim.ctl("audit")["executions"] if str(e["orderRef"]).startswith("ex-")]
    live = [e for e in ours if not e.get("replaced_by")]
    if live:
        c.sim.ctl("correct-execution", live[-1]["execId"])  # same price and quantity: IB's bookkeeping fix


def _slow_answers(c: Cluster) -> None:
    c.sim.ctl("delay", "executions", "2")
    c.sim.ctl("delay", "open-orders", "1")
    c.sim.ctl("drop")  # the reconciliation after the reconnect meets slow answers
    time.sleep(3)
    c.sim.ctl("delay", "executions", "0")
    c.sim.ctl("delay", "open-orders", "0")


def _holdings_and_id_rollback(c: Cluster) -> None:
    c.sim.ctl("holding", "AAPL", "3", "OPT")  # never mixed into AAPL stock, never a mismatch
    c.sim.ctl("next-id-rollback", "1")  # a restarted Gateway's nextValidId went back
    c.kill("bridge")
    c.start("bridge")


BAD_NIGHT: list[Fault] = [
    _drop,
    _market_data_lost,
    _bridge_killed,
    _holdings_and_id_rollback,
    _link_lost_then_back,
    _reset,
    _fills_while_away,
    _made_up_cancel,
    _executor_killed,
    _correction,
    _silent,
    _slow_answers,
]


def _flip(c: Cluster, weight: float, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        c.publish_target("AAPL", weight)
        c.publish_target("MSFT", -weight)
        time.sleep(0.05)


def test_a_bad_night_loses_no_fill_and_places_no_order_twice(short_tmp: Path) -> None:
    # flipping $450k positions at 60x costs more than the default daily loss limit: lift it for this test
    env = {"DAILY_LOSS_LIMIT": "100000000", "BRIDGE_HEARTBEAT_TIMEOUT": "1.5"}
    with running_cluster(short_tmp, env=env) as c:
        weight = 0.9
        for fault in BAD_NIGHT:
            _flip(c, weight, 0.5)  # orders working, fills arriving
            fault(c)
            _flip(c, weight, 0.5)
            weight = -weight
            c.wait_bridge_ready(timeout=30)
            c.wait_executor_ready(timeout=30)

        def settled() -> bool:
            c.publish_target("AAPL", 0.6)
            c.publish_target("MSFT", -0.6)
            working = int(c.ledger("SELECT COUNT(*) AS n FROM orders WHERE settled = 0")[0]["n"])
            return working == 0 and c.status()["state"] == "READY"

        wait_for("every order settled and the executor trading", settled, 45, interval=0.3)

        def quiet() -> bool:  # the last targets may still have made orders: nothing working anywhere, twice
            at_broker = [o for o in c.sim.status()["open_orders"] if o["order_ref"].startswith("ex-")]
            return not at_broker and not c.ledger("SELECT 1 FROM orders WHERE settled = 0")

        def quiet_twice() -> bool:
            if not quiet():
                return False
            time.sleep(0.5)
            return quiet()

        wait_for("no order of ours working", quiet_twice, 30, interval=0.3)
        before = int(c.status()["reconciliations"])
        wait_for("one more reconciliation", lambda: int(c.status()["reconciliations"]) > before, 15)
        status = c.status()
        assert status["halted"] is False, status["halt_reason"]
        check_ledger_against_broker(c)
        bridge = c.request("bridge", HealthRequest())  # the night was real: the last bridge lived through it
        assert bridge["reconnects"] >= 2 and bridge["counters"]["heartbeats_missed"] >= 1
        orders = c.orders()
        assert {o["symbol"] for o in orders if o["status"] == "FILLED"} == {"AAPL", "MSFT"}
        assert len(orders) >= len(BAD_NIGHT)  # it kept trading through the night
