"""Orders: bad fields are refused naming the field, one client order id is one order (retries, reconnects,
restarts), and orders lost with a socket before the Gateway saw them are released for a retry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from procs.bridge.orders import (
    OrderConflict,
    OrderInvalid,
    OrderRegistry,
    check_place_order,
    confirmed,
    invented,
    order_status,
)
from shared.messages import PlaceOrder


def order(**kw: object) -> PlaceOrder:
    base: dict[str, object] = dict(
        client_order_id="ord-1",
        symbol="AAPL",
        side="BUY",
        quantity=Decimal(10),
        limit_price=Decimal("190.01"),
    )
    base.update(kw)
    return PlaceOrder(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"client_order_id": ""}, "client_order_id"),
        ({"client_order_id": "has space"}, "client_order_id"),
        ({"symbol": "aapl"}, "symbol"),
        ({"quantity": Decimal(0)}, "quantity"),
        ({"quantity": Decimal("-5")}, "quantity"),
        ({"quantity": Decimal("NaN")}, "quantity"),
        ({"limit_price": None}, "limit_price"),
        ({"limit_price": Decimal("-1")}, "limit_price"),
        ({"order_type": "MKT"}, "limit_price"),
        ({"order_type": "STP", "limit_price": None}, "stop_price"),
    ],
)
def test_a_bad_field_is_refused_by_name(fields: dict[str, object], named: str) -> None:
    with pytest.raises(OrderInvalid, match=named):
        check_place_order(order(**fields))


def test_a_price_off_the_minimum_tick_is_refused() -> None:
    with pytest.raises(OrderInvalid, match="minimum tick 0.01"):
        check_place_order(order(limit_price=Decimal("190.015")), min_tick=Decimal("0.01"))
    check_place_order(order(limit_price=Decimal("190.01")), min_tick=Decimal("0.01"))


def test_the_same_client_order_id_twice_is_one_order() -> None:
    r = OrderRegistry()
    first = r.claim(order())
    assert first.new
    r.sent("ord-1", order_id=11, generation=1)
    again = r.claim(order(quantity=Decimal("10.0")))  # the same order, however the number is written
    assert not again.new and again.record.order_id == 11 and r.duplicates == 1


def test_reusing_an_id_for_a_different_order_is_refused() -> None:
    r = OrderRegistry()
    r.claim(order())
    with pytest.raises(OrderConflict, match="already used"):
        r.claim(order(quantity=Decimal(20)))


def test_a_claim_whose_send_failed_is_released_for_the_retry() -> None:
    r = OrderRegistry()
    r.claim(order())
    r.release("ord-1")
    assert r.claim(order()).new


def test_orders_learnt_from_the_gateway_dedupe_after_a_restart() -> None:
    r = OrderRegistry()  # a fresh bridge process: empty until the sync
    r.seen("ord-1", "AAPL", order_id=11, perm_id=900, status="SUBMITTED")
    r.seen("", "MSFT", order_id=40, perm_id=901, status="SUBMITTED")  # not ours: no orderRef
    claim = r.claim(order())
    assert not claim.new and claim.record.perm_id == 900
    assert r.highest_order_id == 40 and len(r) == 1


def test_after_a_complete_sync_orders_the_gateway_never_saw_are_released() -> None:
    r = OrderRegistry()
    r.claim(order(client_order_id="lost"))
    r.sent("lost", order_id=12, generation=1)
    r.claim(order(client_order_id="arrived"))
    r.sent("arrived", order_id=13, generation=1)
    r.claim(order(client_order_id="this-session"))
    r.sent("this-session", order_id=14, generation=2)
    released = r.forget_unacknowledged(at_gateway={"arrived"}, generation=2)
    assert [x.client_order_id for x in released] == ["lost"]
    assert r.get("lost") is None and r.get("arrived") is not None and r.get("this-session") is not None


@pytest.mark.parametrize(
    ("ib", "filled", "remaining", "code", "ours"),
    [
        ("PendingSubmit", 0, 10, 0, "NEW"),
        ("PreSubmitted", 0, 10, 0, "SUBMITTED"),
        ("Submitted", 4, 6, 0, "PARTIALLY_FILLED"),
        ("Filled", 10, 0, 0, "FILLED"),
        ("Cancelled", 0, 10, 202, "CANCELLED"),
        ("Cancelled", 0, 10, 201, "REJECTED"),
        ("Inactive", 0, 10, 0, "INACTIVE"),
        ("PendingCancel", 0, 10, 0, "PENDING_CANCEL"),
    ],
)
def test_ib_status_words_map_to_order_states(
    ib: str, filled: float, remaining: float, code: int, ours: str
) -> None:
    assert order_status(ib, filled, remaining, code) == ours


def test_a_321_validation_warning_on_an_order_the_gateway_never_acknowledged_is_a_rejection() -> None:
    assert order_status("ValidationError", 0, 10, 321, perm_id=0) == "REJECTED"


def test_a_validation_warning_on_a_live_order_keeps_it_live() -> None:
    assert order_status("ValidationError", 0, 10, 321, perm_id=99) == "SUBMITTED"


@pytest.mark.parametrize(
    ("status", "ib_status", "gateway_said", "is_confirmed"),
    [
        ("REJECTED", "Cancelled", "Submitted", False),  # ib_async's Cancelled on an informational 10349
        ("REJECTED", "Cancelled", None, False),  # an error before the Gateway ever spoke of the order
        ("CANCELLED", "Cancelled", "PendingCancel", False),
        ("CANCELLED", "Cancelled", "Cancelled", True),  # the Gateway's own orderStatus (or 202)
        ("INACTIVE", "Inactive", "Inactive", True),
        ("FILLED", "Filled", "Filled", True),
        ("REJECTED", "ValidationError", None, False),  # a 321 read as a rejection by the bridge itself
        ("SUBMITTED", "Submitted", None, True),  # a working state is never in doubt
        ("PENDING_CANCEL", "PendingCancel", "Submitted", True),
    ],
)
def test_a_final_status_is_confirmed_only_when_the_gateway_said_it(
    status: str, ib_status: str, gateway_said: str | None, is_confirmed: bool
) -> None:
    assert confirmed(status, ib_status, gateway_said) is is_confirmed  # type: ignore[arg-type]


def test_a_final_status_the_gateway_did_not_say_is_invented() -> None:
    assert invented("Cancelled", "Submitted") and invented("Cancelled", None)
    assert not invented("Cancelled", "Cancelled") and not invented("Submitted", None)
    assert not invented("PendingCancel", "Submitted")  # our own cancel in flight: not final, not ours to undo


def test_a_cancel_while_placing_withholds_the_order_and_keeps_its_id_taken() -> None:
    r = OrderRegistry()
    assert r.claim(order()).new
    assert r.ask_cancel("ord-1")
    r.release("ord-1")  # the placement gave up without sending
    again = r.claim(order())  # a retry of the same PlaceOrder must not place it after the cancel
    assert not again.new and again.record.status == "CANCELLED" and again.record.order_id == 0
    assert not r.ask_cancel("ord-1") and not r.ask_cancel("never-seen")


def test_an_order_already_sent_is_not_cancelled_by_withholding() -> None:
    r = OrderRegistry()
    r.claim(order())
    r.sent("ord-1", order_id=11, generation=1)
    assert not r.ask_cancel("ord-1")  # it is at the Gateway: a real cancel is needed


def test_an_order_refused_as_a_duplicate_id_is_replaced_once_and_its_dead_copy_ignored() -> None:
    r = OrderRegistry()
    r.claim(order())
    r.sent("ord-1", order_id=11, generation=1)
    record = r.replace_after_duplicate(11)
    assert record is not None and record.client_order_id == "ord-1"
    r.replaced_by(11, "ord-1", 1012, generation=1)
    assert r.get("ord-1").order_id == 1012 and r.highest_order_id == 1012  # type: ignore[union-attr]
    assert r.seen("ord-1", "AAPL", order_id=11, perm_id=0, status="REJECTED") is None  # the dead copy
    assert r.get("ord-1").status == "NEW"  # type: ignore[union-attr]
    assert r.replace_after_duplicate(1012) is None  # a second 103: never a third placement
    assert r.replace_after_duplicate(99) is None  # not an order of ours


def test_an_order_still_being_placed_is_not_lost_by_a_sync() -> None:
    r = OrderRegistry()
    r.claim(order(client_order_id="placing"))  # waiting for contract details while the session reconnects
    assert r.forget_unacknowledged(at_gateway=set(), generation=2) == []
    r.sent("placing", order_id=5, generation=2)  # and its placement can still complete
