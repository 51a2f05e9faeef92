"""bin/trader positions renders each position's protective stop: type, trigger, quantity and order state."""

from __future__ import annotations

from procs.cli.trader_view import render

ROW = {"symbol": "AAPL", "quantity": "100", "avg_cost": "100.0000", "mark": "101", "market_value": "10100.00",
       "unrealized": "100.00", "realized": "0.00", "broker_quantity": "100"}  # fmt: skip


def test_positions_show_the_stop_and_a_bare_position() -> None:
    protected = {**ROW, "stop_type": "TRAIL", "stop_trigger": "98.5 (trail 3%)", "stop_quantity": "100",
                 "stop_state": "SUBMITTED"}  # fmt: skip
    bare = {
        **ROW,
        "symbol": "MSFT",
        "stop_type": "",
        "stop_trigger": "",
        "stop_quantity": "",
        "stop_state": "NONE for 12s",
    }
    head, _, aapl, msft = render("positions", [protected, bare]).splitlines()
    assert head.split()[-4:] == ["stop", "trigger", "stop_qty", "stop_state"]
    assert (
        aapl.split()[-5:] == ["TRAIL", "98.5", "(trail", "3%)", "100", "SUBMITTED"][-5:] and "TRAIL" in aapl
    )
    assert msft.endswith("NONE for 12s")
