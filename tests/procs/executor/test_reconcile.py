"""Reconciliation logic against an in-memory broker view: idempotent, resends the unacknowledged, halts on mismatch."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from procs.executor.actions import Publish, Send
from procs.executor.engine import Executor
from procs.executor.reconcile import Mismatch, Reconciler, diff_positions
from shared.messages import (
    ExecutionsRequest,
    Fill,
    OpenOrdersRequest,
    OrderEvent,
    Position,
    PositionsRequest,
    Request,
    TargetPosition,
)

from .conftest import WallClock

D = Decimal


class BrokerView:
    """What the bridge would answer: lists of Structs encoded as maps, like the real Reply.result."""

    def __init__(self) -> None:
        self.open: list[OrderEvent] = []
        self.fills: list[Fill] = []
        self.positions: list[Position] = []
        self.asked: list[str] = []

    async def call(self, req: Request) -> Any:
        self.asked.append(type(req).__name__)
        if isinstance(req, OpenOrdersRequest):
            return msgspec.to_builtins(self.open)
        if isinstance(req, ExecutionsRequest):
            return msgspec.to_builtins(self.fills)
        if isinstance(req, PositionsRequest):
            return msgspec.to_builtins(self.positions)
        raise AssertionError(req)


def place(ex: Executor, weight: float = 0.5) -> str:
    t = TargetPosition(symbol="AAPL", weight=weight, reason="t", strategy="t", feature_end_ns=1)
    (send,) = [a for a in ex.on_target(t) if isinstance(a, Send)]
    return send.order.client_order_id


def test_diff_positions_respects_the_tolerance() -> None:
    assert diff_positions({"A": D(10)}, {"A": D(10)}, D(0)) == []
    assert diff_positions({"A": D(10)}, {"A": D(9), "B": D(1)}, D(0)) == [
        Mismatch("A", D(10), D(9)),
        Mismatch("B", D(0), D(1)),
    ]
    assert diff_positions({"A": D(10)}, {"A": D(9)}, D(1)) == []


async def test_fills_missed_while_away_are_booked_once_and_rerunning_changes_nothing(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    coid = place(ex)
    broker = BrokerView()
    broker.fills = [
        Fill(exec_id=f"e{i}", client_order_id=coid, symbol="AAPL", side="BUY", quantity=D(25), price=D(100))
        for i in range(2)
    ]
    broker.positions = [Position(symbol="AAPL", quantity=D(50))]
    rec = Reconciler(ex, broker.call, grace_seconds=0)
    report, _ = await rec.run("test")
    assert (report.fills_seen, report.fills_booked, report.mismatches) == (2, 2, [])
    order = ex.view.order(coid)
    assert order is not None and order.status == "FILLED"
    report, _ = await rec.run("again")
    assert (report.fills_booked, ex.view.position("AAPL"), ex.view.cash()) == (0, D(50), D(-5000))


async def test_an_order_found_by_order_ref_is_updated_not_resent(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    coid = place(ex)
    broker = BrokerView()
    broker.open = [OrderEvent(client_order_id=coid, order_id=42, status="SUBMITTED", symbol="AAPL")]
    report, actions = await Reconciler(ex, broker.call, grace_seconds=0).run("bridge restarted")
    order = ex.view.order(coid)
    assert order is not None and (order.status, order.broker_order_id) == ("SUBMITTED", 42)
    assert report.resent == [] and not [a for a in actions if isinstance(a, Send)]


async def test_a_never_acknowledged_order_is_resent_with_the_same_id(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    coid = place(ex)
    report, actions = await Reconciler(ex, BrokerView().call, grace_seconds=0).run("start-up")
    assert report.resent == [coid]
    assert [a.order.client_order_id for a in actions if isinstance(a, Send)] == [coid]


async def test_an_order_the_broker_no_longer_lists_is_closed(make_executor: Callable[..., Executor]) -> None:
    wall = WallClock()
    ex = make_executor(wall=wall, order_timeout_seconds=30)
    coid = place(ex)
    ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED"))
    stale = place(ex, weight=0.9)  # never acknowledged and older than the timeout
    wall.advance(60)
    report, _ = await Reconciler(ex, BrokerView().call, grace_seconds=5, started_ns=0).run("periodic")
    assert sorted(report.closed) == sorted([coid, stale])
    for c in (coid, stale):
        order = ex.view.order(c)
        assert order is not None and order.status == "CANCELLED" and "reconciliation" in order.reason


async def test_a_position_mismatch_halts_with_both_numbers(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    broker = BrokerView()
    broker.positions = [Position(symbol="MSFT", quantity=D(7))]
    report, actions = await Reconciler(ex, broker.call).run("periodic")
    assert report.halted and ex.view.halt.halted and ex.view.halt.source == "reconcile"
    assert "MSFT ledger 0 broker 7" in ex.view.halt.reason
    alerts = [a.msg for a in actions if isinstance(a, Publish) and a.topic == "alert"]
    assert any(getattr(m, "code", "") == "position.mismatch" for m in alerts)


async def test_a_mismatch_on_a_symbol_with_working_orders_must_be_seen_twice(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    coid = place(ex)
    broker = BrokerView()
    broker.open = [OrderEvent(client_order_id=coid, status="PARTIALLY_FILLED", filled=D(10))]
    broker.positions = [Position(symbol="AAPL", quantity=D(10))]  # its fill is not reported yet
    rec = Reconciler(ex, broker.call, grace_seconds=0)
    report, _ = await rec.run("first")
    assert report.mismatches and not ex.view.halt.halted
    report, _ = await rec.run("second")
    assert report.halted and ex.view.halt.halted


async def test_orders_of_a_previous_process_get_no_grace_but_fresh_ones_do(
    make_executor: Callable[..., Executor],
) -> None:
    wall = WallClock()
    ex = make_executor(wall=wall)
    old = place(ex)
    wall.advance(1)
    rec = Reconciler(ex, BrokerView().call, grace_seconds=5)  # this process starts now
    fresh = place(ex, weight=0.9)
    wall.advance(1)
    report, _ = await rec.run("start-up")
    assert report.resent == [old]  # written by a process that died: nothing can be in flight
    assert fresh not in report.resent and fresh in ex.view.working


async def test_an_order_acknowledged_while_the_executions_answer_is_slow_is_never_closed(
    make_executor: Callable[..., Executor],
) -> None:
    """The open-order snapshot is taken, the order is acknowledged while the executions answer is slow, and no grace
    period protects it (grace 0): it is newer than the snapshot, so it is left for the next reconciliation."""
    wall = WallClock()
    ex = make_executor(wall=wall)
    coid = place(ex)
    wall.advance(60)  # sent long ago: no grace of any kind for it
    broker = BrokerView()
    plain_call = broker.call

    async def slow_executions(req: Request) -> Any:
        if isinstance(req, ExecutionsRequest):  # meanwhile the live stream acknowledges the order
            wall.advance(8)
            ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED"))
            wall.advance(8)
        return await plain_call(req)

    report, actions = await Reconciler(ex, slow_executions, grace_seconds=0).run("periodic")
    assert report.closed == [] and report.resent == []
    assert ex.view.order(coid).status == "SUBMITTED"  # type: ignore[union-attr]
    assert not [a for a in actions if isinstance(a, Send)]
