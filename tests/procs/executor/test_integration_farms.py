"""Data-farm outages by kind (real simulator, bridge and executor): a market-data farm down (2103) refuses new risk
but lets a reduce-only target and `flatten` through, priced per FARM_DOWN_PRICING; a historical-data farm down
(2105) leaves orders alone; the executor's status says which farm and what it blocks."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from shared.messages import FlattenRequest
from tests.support.wait import wait_for

from .cluster import broker_positions, check_ledger_against_broker, running_cluster

D = Decimal
SMALL = {"POSITION_NOTIONAL": "20000"}  # ~100 AAPL: filled on arrival


def settled(c: object) -> bool:
    return not c.ledger("SELECT 1 FROM orders WHERE settled = 0")  # type: ignore[attr-defined]


def test_market_data_farm_down_refuses_new_risk_and_a_reduce_only_target_goes_at_a_quote_limit(
    short_tmp: Path,
) -> None:
    with running_cluster(short_tmp, env={**SMALL, "FARM_DOWN_PRICING": "quote"}) as c:
        c.target_until("AAPL", 1.0, lambda: broker_positions(c).get("AAPL", 0) > 0 and settled(c), 30)
        held = broker_positions(c)["AAPL"]
        c.sim.ctl("error", "2103")  # usfarm
        st = wait_for(
            "the executor sees the farm down", lambda: (s := c.status())["gateway"] == "DEGRADED" and s, 15
        )
        assert st["orders_gate"].startswith("reduce-only and flatten") and "usfarm" in st["orders_gate"]
        assert "new risk refused" in st["gateway_reason"] and st["orders_allowed"]
        before = len(c.orders("AAPL"))
        c.publish_target("MSFT", 0.5)  # new risk: refused, nothing ordered
        wait_for(
            "the new-risk refusal", lambda: "only reduce-only orders go" in c.status()["last_rejection"], 15
        )
        # the strategy halves AAPL: a reduce-only order goes, a marketable limit from the last quote
        c.target_until("AAPL", 0.5, lambda: broker_positions(c).get("AAPL", held) < held and settled(c), 20)
        closing = c.orders("AAPL")[before:]
        assert closing and all(o["reduce_only"] and o["order_type"] == "LMT" for o in closing)
        assert "MSFT" not in broker_positions(c) and not c.orders("MSFT")
        c.sim.ctl("error", "2104")
        wait_for("READY again", lambda: c.status()["orders_gate"] == "all", 15)
        c.target_until("MSFT", 0.5, lambda: broker_positions(c).get("MSFT", 0) > 0, 20)
        wait_for("every order settled", lambda: settled(c), 20)
        check_ledger_against_broker(c)


def test_flatten_goes_at_market_while_the_market_data_farm_is_down_and_a_history_outage_blocks_no_order(
    short_tmp: Path,
) -> None:
    env = {**SMALL, "FARM_DOWN_PRICING": "market", "FARM_DOWN_QUOTE_MAX_AGE": "1"}
    with running_cluster(short_tmp, env=env) as c:
        c.sim.ctl("error", "2105")  # ushmds: history waits, orders do not
        c.target_until("AAPL", 1.0, lambda: broker_positions(c).get("AAPL", 0) > 0 and settled(c), 30)
        st = c.status()
        assert st["orders_gate"] == "all" and "historical-data farm down (ushmds)" in st["gateway_reason"]
        c.sim.ctl("error", "2103")
        wait_for("the executor sees the farm down", lambda: c.status()["gateway"] == "DEGRADED", 15)
        time.sleep(
            1.5
        )  # the last quote is now older than FARM_DOWN_QUOTE_MAX_AGE: a limit could not be priced
        c.request("executor", FlattenRequest(symbols=["AAPL"]))
        wait_for("flat at the broker", lambda: broker_positions(c).get("AAPL", 0) == 0, 20)
        wait_for("flatten says flat", lambda: c.status()["flattening"]["AAPL"]["state"] == "flat", 20)
        closing = [o for o in c.orders("AAPL") if o["why"] == "flatten by operator"]
        assert closing and all(o["order_type"] == "MKT" and o["reduce_only"] for o in closing)
        check_ledger_against_broker(c)


def test_a_fractional_position_at_the_broker_is_accepted_and_flattened_to_zero(short_tmp: Path) -> None:
    """A dividend reinvestment leaves AAPL fractional at the broker (the simulator's manual order of 0.5): the
    mismatch is exact (never rounded away), the operator accepts the broker's number, and flatten closes every
    share, the fraction included, in reduce-only orders, to exactly zero."""
    from shared.messages import AcceptBrokerRequest

    with running_cluster(short_tmp, env=SMALL) as c:
        c.target_until("AAPL", 1.0, lambda: broker_positions(c).get("AAPL", 0) > 0 and settled(c), 30)
        held = broker_positions(c)["AAPL"]
        c.sim.ctl("manual-order", "AAPL", "BUY", "0.5")  # reinvested dividend
        wait_for("the mismatch", lambda: c.status()["mismatched"].get("AAPL"), 20)
        assert D(c.status()["mismatched"]["AAPL"]["broker"]) == held + D("0.5")
        c.request(
            "executor", AcceptBrokerRequest(symbol="AAPL", reason="dividend reinvestment", operator="t"), 10
        )
        c.request("executor", FlattenRequest(symbols=["AAPL"]))
        wait_for("flat at the broker", lambda: "AAPL" not in broker_positions(c), 20)
        wait_for("flatten says flat", lambda: c.status()["flattening"]["AAPL"]["state"] == "flat", 20)
        closing = [o for o in c.orders("AAPL") if o["why"] == "flatten by operator"]
        assert sum(D(o["filled"]) for o in closing) == held + D("0.5") and all(
            o["reduce_only"] for o in closing
        )
        assert c.status()["mismatched"] == {}


def test_a_bad_farm_down_pricing_setting_stops_the_executor_with_exit_78_naming_the_key(
    short_tmp: Path,
) -> None:
    import subprocess

    from .cluster import PYTHON, REPO

    for key, value in (("FARM_DOWN_PRICING", "limit"), ("FARM_DOWN_QUOTE_MAX_AGE", "-5")):
        env = {
            "STACK_HOME": str(short_tmp),
            "VAR_DIR": str(short_tmp / "var"),
            "PATH": "/usr/bin:/bin",
            key: value,
        }
        done = subprocess.run(
            [str(PYTHON), "-m", "procs.executor"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 78 and len(lines) == 1 and key in lines[0], (key, done.stderr)
