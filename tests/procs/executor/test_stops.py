"""procs/executor/stops.py, the pure plan: every branch that decides create, resize, cancel or "cannot protect"."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest

from procs.executor.orders import OrderRecord
from procs.executor.stops import (
    STOP_PREFIX,
    Create,
    Remove,
    Resize,
    Unprotectable,
    is_stop,
    new_stop_id,
    plan,
    stop_price,
)

D = Decimal
TICK = D("0.01")
STP5 = ("STP", D(5))
TRAIL3 = ("TRAIL", D(3))


def stop(
    coid: str = "st-1",
    side: str = "SELL",
    quantity: str = "100",
    kind: str = "STP",
    status: str = "SUBMITTED",
    filled: str = "0",
    created: int = 1,
    **more: Any,
) -> OrderRecord:
    return OrderRecord(
        client_order_id=coid,
        symbol="AAPL",
        side=cast(Any, side),
        quantity=D(quantity),
        order_type=cast(Any, kind),
        limit_price=D("95"),
        status=cast(Any, status),
        filled=D(filled),
        reported_filled=D(filled),
        created_ns=created,
        **more,
    )


def test_stop_ids_are_marked_and_never_entries() -> None:
    coid = new_stop_id("AAPL", 1_795_000_000 * 10**9)
    assert coid.startswith(STOP_PREFIX) and "-AAPL-" in coid and is_stop(coid)
    assert not is_stop("ex-20260101T000000-AAPL-00000000")
    assert new_stop_id("AAPL") != new_stop_id("AAPL")


def test_fixed_stop_price_below_a_long_above_a_short_on_the_tick_never_beyond() -> None:
    assert stop_price("STP", D(5), D("100"), True, TICK) == D("95.00")
    assert stop_price("STP", D(5), D("100"), False, TICK) == D("105.00")
    # 5% of 123.45 is 6.1725: a long's stop rounds down (further away), a short's up
    assert stop_price("STP", D(5), D("123.45"), True, TICK) == D("117.27")
    assert stop_price("STP", D(5), D("123.45"), False, TICK) == D("129.63")
    assert stop_price("STP", D(3), D("10.07"), True, D("0.05")) == D("9.75")


def test_a_new_long_gets_one_sell_stp_of_its_size() -> None:
    assert plan(D(100), D(100), STP5, [], TICK) == [Create("SELL", D(100), "STP", D("95.00"), None)]


def test_a_new_short_gets_one_buy_stp_above_its_cost() -> None:
    assert plan(D(-40), D(100), STP5, [], TICK) == [Create("BUY", D(40), "STP", D("105.00"), None)]


def test_a_trailing_stop_is_priced_by_the_broker() -> None:
    assert plan(D(100), D(0), TRAIL3, [], TICK) == [Create("SELL", D(100), "TRAIL", None, D(3))]


def test_the_right_stop_of_the_right_size_is_left_alone() -> None:
    assert plan(D(100), D(100), STP5, [stop()], TICK) == []
    assert (
        plan(D(60), D(100), STP5, [stop(quantity="100", filled="40", status="PARTIALLY_FILLED")], TICK) == []
    )


def test_a_changed_position_resizes_the_stop_never_a_second_one() -> None:
    assert plan(D(150), D(100), STP5, [stop()], TICK) == [Resize("st-1", D(150))]
    assert plan(D(30), D(100), STP5, [stop()], TICK) == [Resize("st-1", D(30))]
    # the new total counts what already filled: 40 filled + 80 still held
    partly = stop(filled="40", status="PARTIALLY_FILLED")
    assert plan(D(80), D(100), STP5, [partly], TICK) == [Resize("st-1", D(120))]


def test_a_closed_position_cancels_its_stops() -> None:
    assert plan(D(0), D(100), STP5, [stop()], TICK) == [Remove("st-1", "position closed")]


def test_no_stop_configured_cancels_the_ones_left() -> None:
    assert plan(D(100), D(100), None, [stop()], TICK) == [Remove("st-1", "no stop configured")]
    assert plan(D(100), D(100), None, [], TICK) == []


def test_a_stop_already_going_away_is_not_cancelled_twice() -> None:
    assert plan(D(0), D(100), STP5, [stop(status="PENDING_CANCEL")], TICK) == []


def test_a_stop_cancel_pending_holds_back_a_new_one() -> None:
    # never two at once: wait for the cancel to be confirmed, then create
    assert plan(D(100), D(100), STP5, [stop(status="PENDING_CANCEL")], TICK) == []


def test_finished_stops_are_ignored() -> None:
    gone = stop(status="CANCELLED")
    assert plan(D(100), D(100), STP5, [gone], TICK) == [Create("SELL", D(100), "STP", D("95.00"), None)]


def test_an_extra_stop_is_cancelled_the_oldest_kept() -> None:
    older, newer = stop("st-a", created=1), stop("st-b", created=2)
    steps = plan(D(100), D(100), STP5, [newer, older], TICK)
    assert steps == [Remove("st-b", "extra stop: st-a already protects it")]


def test_a_stop_on_the_wrong_side_or_of_the_wrong_kind_is_replaced() -> None:
    wrong_side = stop("st-w", side="BUY")
    steps = plan(D(100), D(100), STP5, [wrong_side], TICK)
    assert (
        isinstance(steps[0], Remove) and steps[0].client_order_id == "st-w" and "wrong stop" in steps[0].why
    )
    assert len(steps) == 1  # the replacement waits until the wrong one is gone (never two working)
    wrong_kind = stop("st-k", kind="STP")
    steps = plan(D(100), D(0), TRAIL3, [wrong_kind], TICK)
    assert [type(s) for s in steps] == [Remove] and "wrong stop" in cast(Remove, steps[0]).why


def test_nothing_is_created_or_resized_while_a_stops_fills_are_on_their_way() -> None:
    # the broker says 60 filled, 0 booked yet: the position is about to shrink -- decide when the fills are in
    in_flight = stop(status="PARTIALLY_FILLED")
    in_flight.reported_filled = D(60)
    assert plan(D(100), D(100), STP5, [in_flight], TICK) == []
    # FILLED at the broker, fills not booked: no new stop for a position that is about to be flat
    done = stop(status="FILLED")
    assert plan(D(100), D(100), STP5, [done], TICK) == []


def test_no_contract_details_means_unprotectable_not_a_guessed_price() -> None:
    for tick in (None, D(0)):
        steps = plan(D(100), D(100), STP5, [], tick)
        assert len(steps) == 1 and isinstance(steps[0], Unprotectable) and "contract" in steps[0].why


def test_a_fixed_stop_without_an_average_cost_is_unprotectable() -> None:
    steps = plan(D(100), D(0), STP5, [], TICK)
    assert len(steps) == 1 and isinstance(steps[0], Unprotectable) and "average cost" in steps[0].why


@pytest.mark.parametrize("position", [D(1), D(-1), D(2500)])
def test_every_plan_leaves_at_most_one_live_stop(position: Decimal) -> None:
    stops = [stop("st-a", created=1), stop("st-b", created=2), stop("st-c", side="BUY", created=3)]
    steps = plan(position, D(100), STP5, stops, TICK)
    removed = {s.client_order_id for s in steps if isinstance(s, Remove)}
    created = [s for s in steps if isinstance(s, Create)]
    assert len({"st-a", "st-b", "st-c"} - removed) + len(created) <= 1
