"""A stop's live trigger in the bridge's OrderEvent: a TRAIL's trailStopPrice (as it has trailed), an STP's auxPrice;
nothing for other orders or while IB has not said (its unset double)."""

from __future__ import annotations

from decimal import Decimal

from ib_async import Order

from procs.bridge.ib.convert import stop_trigger

UNSET = 1.7976931348623157e308


def test_a_trails_trigger_is_its_trail_stop_price() -> None:
    assert stop_trigger(Order(orderType="TRAIL", trailStopPrice=97.25, trailingPercent=3)) == Decimal("97.25")
    assert stop_trigger(Order(orderType="TRAIL", trailStopPrice=UNSET, trailingPercent=3)) is None


def test_a_fixed_stops_trigger_is_its_aux_price() -> None:
    assert stop_trigger(Order(orderType="STP", auxPrice=95.0)) == Decimal("95.0")
    assert stop_trigger(Order(orderType="STP", auxPrice=UNSET)) is None


def test_other_orders_have_no_trigger() -> None:
    assert stop_trigger(Order(orderType="LMT", lmtPrice=100.0, auxPrice=0)) is None
    assert stop_trigger(Order(orderType="MKT")) is None
