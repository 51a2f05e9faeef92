"""The order state machine: forward moves, stale callbacks tolerated, impossible transitions refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from procs.executor.orders import (
    OrderRecord,
    apply_fill_quantity,
    is_ours,
    may_expire,
    new_client_order_id,
    next_state,
)

D = Decimal


def order(**kw: object) -> OrderRecord:
    base: dict[str, object] = dict(
        client_order_id="ex-1",
        symbol="AAPL",
        side="BUY",
        quantity=D(100),
        order_type="LMT",
        limit_price=D(100),
    )
    return OrderRecord(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "reported", "state", "outcome"),
    [
        ("NEW", "SUBMITTED", "SUBMITTED", "moved"),
        ("SUBMITTED", "PARTIALLY_FILLED", "PARTIALLY_FILLED", "moved"),
        ("PARTIALLY_FILLED", "FILLED", "FILLED", "moved"),
        ("SUBMITTED", "CANCELLED", "CANCELLED", "moved"),
        ("NEW", "REJECTED", "REJECTED", "moved"),
        ("SUBMITTED", "PENDING_CANCEL", "PENDING_CANCEL", "moved"),
        ("PENDING_CANCEL", "SUBMITTED", "SUBMITTED", "moved"),  # the cancel was refused
        ("NEW", "FILLED", "FILLED", "moved"),  # callbacks may skip states
        ("PARTIALLY_FILLED", "SUBMITTED", "PARTIALLY_FILLED", "stale"),  # a late Submitted
        ("FILLED", "SUBMITTED", "FILLED", "stale"),
        ("CANCELLED", "PARTIALLY_FILLED", "CANCELLED", "stale"),
        ("FILLED", "REJECTED", "FILLED", "impossible"),
        ("REJECTED", "FILLED", "REJECTED", "impossible"),
        ("CANCELLED", "FILLED", "CANCELLED", "impossible"),
        ("PARTIALLY_FILLED", "REJECTED", "PARTIALLY_FILLED", "impossible"),  # rejected after a fill
        ("SUBMITTED", "SUBMITTED", "SUBMITTED", "same"),
    ],
)
def test_next_state(current: str, reported: str, state: str, outcome: str) -> None:
    t = next_state(current, reported)  # type: ignore[arg-type]
    assert (t.state, t.outcome) == (state, outcome)
    assert t.changed == (outcome == "moved")


def test_fills_add_up_and_drive_the_status() -> None:
    o = order(status="SUBMITTED")
    apply_fill_quantity(o, D(30), D("100.10"))
    assert (o.status, o.filled, o.pending()) == ("PARTIALLY_FILLED", D(30), D(70))
    apply_fill_quantity(o, D(70), D("100.00"))
    assert (o.status, o.filled, o.pending()) == ("FILLED", D(100), D(0))
    assert o.avg_fill_price == D("100.03")


def test_a_filled_report_ahead_of_its_fills_keeps_the_rest_pending() -> None:
    o = order(status="FILLED", reported_filled=D(100), filled=D(40))
    assert o.pending() == D(60) and o.signed_pending() == D(60)


def test_a_cancelled_order_is_pending_only_for_fills_in_flight() -> None:
    assert order(status="CANCELLED", filled=D(10), reported_filled=D(10)).pending() == D(0)
    assert order(status="CANCELLED", side="SELL", filled=D(10), reported_filled=D(25)).signed_pending() == D(
        -15
    )


def test_only_orders_the_broker_holds_as_working_may_expire() -> None:
    assert may_expire(order(status="SUBMITTED")) and may_expire(order(status="INACTIVE"))
    assert not may_expire(order(status="NEW"))  # not at the broker yet: reconciliation settles it
    assert not may_expire(order(status="FILLED"))


def test_client_order_ids_are_unique_readable_and_recognisably_ours() -> None:
    ids = {new_client_order_id("AAPL", 1_795_000_000 * 10**9) for _ in range(1000)}
    assert len(ids) == 1000
    one = next(iter(ids))
    assert is_ours(one) and "AAPL" in one and one.startswith("ex-20261118T110640-AAPL-")
    assert not is_ours("manual-order")
