"""The executor core with a real ledger: targets to orders, fills once, out-of-order reports, kill switch, flatten."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from procs.executor.actions import Cancel, Publish, Reconcile, Send
from procs.executor.engine import Executor
from procs.executor.orders import is_ours
from shared.messages import Fill, GatewayStatus, OrderEvent, TargetPosition

from .conftest import WallClock, quote

D = Decimal


def target(symbol: str = "AAPL", weight: float = 0.5) -> TargetPosition:
    return TargetPosition(symbol=symbol, weight=weight, reason="test", strategy="test", feature_end_ns=1)


def sends(actions: list) -> list[Send]:  # type: ignore[type-arg]
    return [a for a in actions if isinstance(a, Send)]


def fill(
    ex: Executor, coid: str, exec_id: str, qty: str, price: str = "100.05", commission: str | None = None
) -> list:  # type: ignore[type-arg]
    o = ex.view.order(coid)
    assert o is not None
    return ex.on_fill(
        Fill(
            exec_id=exec_id,
            client_order_id=coid,
            symbol=o.symbol,
            side=o.side,
            quantity=D(qty),
            price=D(price),
            commission=None if commission is None else D(commission),
        )
    )


def test_a_target_becomes_one_order_written_before_it_is_sent(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    out = sends(ex.on_target(target(weight=0.5)))  # 0.5 x 10,000 / 100.00 = 50 shares
    assert len(out) == 1
    order = out[0].order
    assert (order.side, order.quantity, order.order_type, order.limit_price) == (
        "BUY",
        D(50),
        "LMT",
        D("100.26"),
    )
    assert is_ours(order.client_order_id)
    stored = ex.view.order(order.client_order_id)
    assert stored is not None and stored.status == "NEW"
    assert (stored.decided_on_ns, stored.why) == (1, "test")  # which bar, and why, for the audit trail
    # the same target again: the working order already covers it
    assert sends(ex.on_target(target(weight=0.5))) == []


def test_quantity_is_target_minus_position_and_working_orders(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    first = sends(ex.on_target(target(weight=0.5)))[0].order
    ex.on_order_event(OrderEvent(client_order_id=first.client_order_id, status="SUBMITTED", order_id=7))
    fill(ex, first.client_order_id, "e1", "20")
    more = sends(ex.on_target(target(weight=0.8)))  # 80 - (20 held + 30 working)
    assert [s.order.quantity for s in more] == [D(30)]


def test_a_change_of_direction_cancels_working_orders_first(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    buy = sends(ex.on_target(target(weight=0.5)))[0].order
    ex.on_order_event(OrderEvent(client_order_id=buy.client_order_id, status="SUBMITTED"))
    actions = ex.on_target(target(weight=-0.5))
    assert [a for a in actions if isinstance(a, Cancel)] == [Cancel(buy.client_order_id)]
    assert sends(actions) == []
    after = ex.on_order_event(OrderEvent(client_order_id=buy.client_order_id, status="CANCELLED"))
    sells = sends(after)
    assert [(s.order.side, s.order.quantity) for s in sells] == [("SELL", D(50))]
    assert sells[0].order.decided_on_ns == 0 and sells[0].order.why.startswith("re-decided")


def test_bad_targets_are_rejected_naming_the_rule_and_nothing_is_sent(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor(symbols="AAPL,MSFT,SPY,QQQ")
    assert ex.on_target(target(symbol="ZZZZ")) == []
    assert "symbol" in ex.view.last_rejection and ex.view.counters["rejected_symbol"] == 1
    assert ex.on_target(target(weight=50.0)) == []
    assert ex.view.counters["rejected_weight"] == 1
    assert ex.on_target(target(symbol="QQQ")) == []  # in SYMBOLS, never quoted
    assert ex.view.counters["rejected_quote"] == 1 and "no quote for QQQ" in ex.view.last_rejection
    assert ex.view.orders() == []


def test_targets_wait_for_the_first_reconciliation(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor(synced=False)
    assert ex.on_target(target()) == []
    assert len(sends(ex.mark_synced())) == 1


def test_fills_are_applied_once_and_partial_fills_add_up(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    assert any(isinstance(a, Publish) and a.topic == "fill" for a in fill(ex, coid, "e1", "20"))
    assert fill(ex, coid, "e1", "20") == []  # the same exec_id re-published
    fill(ex, coid, "e2", "30", "100.10")
    order = ex.view.order(coid)
    assert order is not None and order.status == "FILLED" and order.filled == D(50)
    assert ex.view.position("AAPL") == D(50)
    assert ex.view.cash() == D("-5004.00")  # 20 x 100.05 + 30 x 100.10
    fill(ex, coid, "e1", "20", commission="1.00")  # the commission arrives later, once
    fill(ex, coid, "e1", "20", commission="1.00")
    assert ex.view.cash() == D("-5005.00")


def test_out_of_order_and_impossible_reports_do_not_move_an_order_back(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target()))[0].order.client_order_id
    fill(ex, coid, "e1", "50")  # the fill arrives before any status
    assert ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED")) == []
    ex.on_order_event(OrderEvent(client_order_id=coid, status="REJECTED", reason="late nonsense"))
    order = ex.view.order(coid)
    assert order is not None and order.status == "FILLED"
    assert ex.view.counters["transitions_refused"] == 1


def test_a_rejected_order_ends_rejected_with_its_reason(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor(circuit_breaker_max_errors=1)
    coid = sends(ex.on_target(target()))[0].order.client_order_id
    ex.on_order_event(
        OrderEvent(client_order_id=coid, status="REJECTED", reason="321 readonly", error_code=321)
    )
    order = ex.view.order(coid)
    assert order is not None and (order.status, order.error_code) == ("REJECTED", 321)
    assert coid not in ex.view.working
    assert ex.view.circuit_breaker == "OPEN"  # the rejection counted: one is the limit here


def test_repeated_refusals_open_the_circuit_breaker(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor(circuit_breaker_max_errors=2)
    for weight in (0.5, 0.6):
        coid = sends(ex.on_target(target(weight=weight)))[0].order.client_order_id
        ex.on_send_refused(coid, "bridge says no")
    assert ex.view.circuit_breaker == "OPEN"
    assert sends(ex.on_target(target(weight=0.7))) == []
    assert "circuit_breaker" in ex.view.last_rejection


def test_a_send_without_an_answer_asks_for_reconciliation(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target()))[0].order.client_order_id
    assert ex.on_send_lost(coid, "timeout") == [Reconcile("a PlaceOrder got no answer")]
    order = ex.view.order(coid)
    assert order is not None and order.status == "NEW"  # still counted as working: no second order
    assert sends(ex.on_target(target())) == []


def test_working_orders_are_cancelled_after_the_timeout(make_executor: Callable[..., Executor]) -> None:
    wall = WallClock()
    ex = make_executor(wall=wall, order_timeout_seconds=30)
    coid = sends(ex.on_target(target()))[0].order.client_order_id
    ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED"))
    assert ex.expire_orders() == []
    wall.advance(31)
    assert ex.expire_orders() == [Cancel(coid)]
    assert ex.expire_orders() == []  # not re-sent at once


def test_the_daily_loss_limit_halts_persists_and_refuses_resume(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor(daily_loss_limit="100")
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    fill(ex, coid, "e1", "50", "100.00")
    assert not ex.view.halt.halted
    ex.on_quote(quote("AAPL", bid=97.9, ask=98.1, last=98.0))  # 50 x -2.00 = -100
    actions = ex.check_daily_loss()
    assert ex.view.halt.halted and ex.view.halt.source == "daily_loss"
    assert any(isinstance(a, Publish) and a.topic == "alert" for a in actions)
    assert ex.view.persisted_halt().halted  # persisted, before anything else happens
    assert sends(ex.on_target(target("MSFT", 0.5))) == []
    assert "halted" in ex.view.last_rejection
    refused = ex.resume()
    assert refused is not None and "-100.00" in refused and ex.view.halt.halted
    # a reduce-only order is still allowed while halted
    sells = sends(ex.on_target(target(weight=0.2)))
    assert [(s.order.side, s.order.quantity, s.order.reduce_only) for s in sells] == [("SELL", D(30), True)]


def test_an_operator_halt_cancels_and_resume_lifts_it(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target()))[0].order.client_order_id
    ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED"))
    actions = ex.trip_halt("lunch", "operator")
    assert Cancel(coid) in actions
    assert ex.resume() is None and not ex.view.halt.halted and not ex.view.persisted_halt().halted


def test_flatten_halts_cancels_what_adds_risk_then_closes_every_position(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    fill(ex, coid, "e1", "30")  # 30 held, 20 still working
    actions = ex.flatten([])
    assert ex.view.halt.halted and ex.view.halt.source == "flatten"
    assert Cancel(coid) in actions
    assert sends(actions) == []  # never a closing order beside a working buy: both could fill
    closing = sends(ex.on_order_event(OrderEvent(client_order_id=coid, status="CANCELLED")))
    assert [(s.order.side, s.order.quantity, s.order.reduce_only) for s in closing] == [("SELL", D(30), True)]


def test_a_gateway_coming_back_ready_asks_for_reconciliation(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    assert ex.on_gateway(GatewayStatus(state="DISCONNECTED")) == []
    assert sends(ex.on_target(target())) == []
    assert "gateway" in ex.view.last_rejection
    assert ex.on_gateway(GatewayStatus(state="READY", orders_allowed=True)) == [Reconcile("gateway READY")]
    assert ex.on_gateway(GatewayStatus(state="READY", orders_allowed=True)) == []


def test_before_the_simulator_clock_is_known_a_short_position_is_not_a_loss(
    make_executor: Callable[..., Executor],
) -> None:
    from procs.executor.hours import MarketClock

    ex = make_executor(daily_loss_limit="100")
    coid = sends(ex.on_target(target(weight=-0.5)))[0].order.client_order_id
    fill(ex, coid, "e1", "50", "100.00")  # short 50: cash +5,000
    # as after a restart with GATEWAY=sim, before the bridge tells the time (no command sets this: forced)
    ex._book.clock = MarketClock(speed=10.0)
    assert ex.view.market_now() is None
    assert abs(ex.view.daily_pnl()) < 1 and ex.check_daily_loss() == [] and not ex.view.halt.halted
