"""The protected executor without a broker (real ledger file): a position in a symbol without contract details is
alerted once and no stop is attempted in a loop; once the details come, the stop goes out; `bin/trader positions`
shows the stop (type, trigger, quantity, state) and how long a position has gone without one."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from procs.executor.actions import Publish, Send
from procs.executor.commands import positions_view
from procs.executor.engine import Executor
from procs.executor.stops import is_stop
from shared.messages import Alert, GatewayStatus, OrderEvent, TargetPosition

from .conftest import WallClock
from .test_engine import fill, sends, target

D = Decimal


@pytest.fixture
def protected(make_executor: Callable[..., Any]) -> Callable[..., Executor]:
    """The conftest's synced executor, with protective stops."""

    def make(wall: WallClock | None = None, **overrides: Any) -> Executor:
        ex: Executor = make_executor(wall, **overrides)
        return ex

    return make


def stop_sends(actions: list[Any]) -> list[Send]:
    return [a for a in sends(actions) if is_stop(a.order.client_order_id)]


def alerts(actions: list[Any], code: str) -> list[Alert]:
    return [
        a.msg for a in actions if isinstance(a, Publish) and isinstance(a.msg, Alert) and a.msg.code == code
    ]


def bought(ex: Executor, forget_tick: bool = False) -> tuple[str, list[Any]]:
    entry = sends(ex.on_target(target("AAPL", 0.5)))[0].order
    if forget_tick:
        del ex._book.ticks["AAPL"]  # e.g. after a restart, the bridge no longer has AAPL's contract details
    ex.on_order_event(OrderEvent(client_order_id=entry.client_order_id, status="SUBMITTED", order_id=1))
    return entry.client_order_id, fill(ex, entry.client_order_id, "e1", "50", "100.00")


def test_no_contract_details_alerts_once_and_never_attempts_a_stop_in_a_loop(
    protected: Callable[..., Executor],
) -> None:
    ex = protected(stop_loss_percent="5")
    _, after_fill = bought(ex, forget_tick=True)
    assert stop_sends(after_fill) == []
    (alert,) = alerts(after_fill, "stop.unprotected")
    assert alert.severity == "CRITICAL" and "contract details" in alert.message and alert.remedy
    again: list[Any] = []
    for _ in range(5):  # reconciliations, position reports: nothing new is tried, nothing alerted again
        again += ex.protect_all()
    assert stop_sends(again) == [] and alerts(again, "stop.unprotected") == []
    assert "AAPL" in ex.view.unprotected()
    # the details come: the stop goes out at the next pass
    ex.on_contract("AAPL", D("0.01"))
    (stop,) = stop_sends(ex.protect_all())
    assert (stop.order.side, stop.order.quantity, stop.order.limit_price) == ("SELL", D(50), D("95.00"))


def test_positions_view_shows_the_stop_and_an_unprotected_position(
    protected: Callable[..., Executor],
) -> None:
    wall = WallClock()
    ex = protected(wall, stop_loss_percent="5")
    _, actions = bought(ex)
    (stop,) = stop_sends(actions)
    (row,) = positions_view(ex.view)
    assert (row["stop_type"], row["stop_trigger"], row["stop_quantity"], row["stop_state"]) == (
        "STP", "95.00", "50", "NEW",
    )  # fmt: skip
    coid = stop.order.client_order_id
    ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED", order_id=2, stop_price=D("95")))
    (row,) = positions_view(ex.view)
    assert (row["stop_state"], row["stop_trigger"]) == ("SUBMITTED", "95")
    # the broker refuses it: not tried again at once, and the view says how long the position has been bare
    ex.on_order_event(OrderEvent(client_order_id=coid, status="REJECTED", reason="refused", error_code=201))
    assert stop_sends(ex.protect_all()) == []
    wall.advance(5)
    (row,) = positions_view(ex.view)
    assert (row["stop_type"], row["stop_state"]) == ("", "NONE for 5s")


def test_a_trailing_stops_live_trigger_is_shown_as_the_broker_reports_it(
    protected: Callable[..., Executor],
) -> None:
    ex = protected(trailing_stop_percent="3")
    _, actions = bought(ex)
    (stop,) = stop_sends(actions)
    coid = stop.order.client_order_id
    ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED", order_id=2, stop_price=D("97.00")))
    ex.on_listed(OrderEvent(client_order_id=coid, status="SUBMITTED", order_id=2, symbol="AAPL", side="SELL",
                            quantity=D(50), order_type="TRAIL", stop_price=D("99.10")))  # fmt: skip
    (row,) = positions_view(ex.view)
    assert row["stop_type"] == "TRAIL" and row["stop_trigger"] == "99.1 (trail 3%)"


def test_a_stop_the_bridge_refused_goes_out_at_the_next_reconciliation_not_in_a_loop_nor_a_minute_later(
    protected: Callable[..., Executor],
) -> None:
    # the chaos run's finding: a stop sent while the Gateway was STALLED came back REJECTED from the bridge, and
    # was then held back for a minute as if IB had refused it, while the position kept changing
    ex = protected(stop_loss_percent="5")
    _, actions = bought(ex)
    (first,) = stop_sends(actions)
    retried = ex.on_send_refused(
        first.order.client_order_id, "orders refused while the Gateway is STALLED: ..."
    )
    assert stop_sends(retried) == []  # not at once: no loop against a bridge that refuses
    assert "AAPL" in ex.view.unprotected()
    (again,) = stop_sends(ex.protect_all())  # the reconciliation that follows the Gateway's return
    assert again.order.quantity == D(50) and again.order.client_order_id != first.order.client_order_id
    assert "re-created" in again.order.why and "not sent" in again.order.why


def test_after_the_gateway_was_away_orders_on_a_stopped_symbol_wait_for_the_reconciliation(
    protected: Callable[..., Executor],
) -> None:
    # the chaos run's NVDA: the stop filled while the Gateway was away; a flip decided from the ledger's +50 would
    # have sold 100 and left the account short twice the position
    ex = protected(stop_loss_percent="5")
    _, actions = bought(ex)
    (stop,) = stop_sends(actions)
    coid = stop.order.client_order_id
    ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED", order_id=2))
    ex.on_gateway(GatewayStatus(state="DISCONNECTED", reason="drop"))
    ex.on_gateway(GatewayStatus(state="READY", orders_allowed=True))
    assert sends(ex.on_target(target("AAPL", -0.5))) == []  # not before the reconciliation
    assert sends(ex.on_target(target("MSFT", 0.5)))  # a symbol without a stop trades on
    # the reconciliation books the stop's fill from while away, then re-decides: flat, the stop took it
    fill(ex, coid, "s1", "50", "94.00")
    assert ex.view.position("AAPL") == 0
    redecided = ex.settle_stops({coid}, ex.view.wall(), ex.view.wall(), 0)
    assert all(a.order.side == "SELL" and a.order.quantity == D(50) for a in sends(redecided))
    later = TargetPosition(
        symbol="AAPL", weight=-0.5, reason="next bar", strategy="test", feature_end_ns=ex.view.wall() + 1
    )
    (short,) = sends(ex.on_target(later))
    assert (short.order.side, short.order.quantity) == ("SELL", D(50))  # from flat, never twice the position
