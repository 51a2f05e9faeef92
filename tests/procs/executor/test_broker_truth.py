"""The executor core against the broker's truth (real ledger, no sockets): statuses the client library made up,
orders the open-order list still holds, orders of ours the ledger never saw, corrections, mismatch blocks, the
operator's accept-broker, flatten one order at a time, and a ledger bound to one account and mode."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from procs.executor.actions import Cancel, Reconcile
from procs.executor.engine import Executor
from procs.executor.ledger import LedgerError, open_ledger
from shared.messages import Fill, OrderEvent, Position

from .conftest import WallClock
from .test_engine import fill, sends, target

D = Decimal


def test_a_made_up_cancel_leaves_the_order_working_and_asks_the_broker(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED"))
    made_up = OrderEvent(client_order_id=coid, status="CANCELLED", error_code=10349, confirmed=False)
    actions = ex.on_order_event(made_up)
    assert any(isinstance(a, Reconcile) for a in actions)
    order = ex.view.order(coid)
    assert order is not None and order.status == "SUBMITTED" and order.unconfirmed == "CANCELLED"
    assert sends(ex.on_target(target(weight=0.5))) == []  # the next bar: still covered, no second order
    closed = ex.close_unconfirmed(order)  # the broker no longer lists it: now it is final
    assert ex.view.order(coid).status == "CANCELLED"  # type: ignore[union-attr]
    assert len(sends(closed)) == 1  # and the target is ordered again


def test_an_order_the_broker_still_lists_is_working_again(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    ex.on_order_event(OrderEvent(client_order_id=coid, status="REJECTED", reason="an old, unconfirmed word"))
    listed = OrderEvent(client_order_id=coid, symbol="AAPL", quantity=D(50), status="SUBMITTED")
    ex.on_listed(listed)
    assert ex.view.order(coid).status == "SUBMITTED"  # type: ignore[union-attr]
    assert sends(ex.on_target(target(weight=0.5))) == []


def test_inactive_is_not_final(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    ex.on_order_event(OrderEvent(client_order_id=coid, status="INACTIVE"))
    assert sends(ex.on_target(target(weight=0.5))) == []  # still counted against the target
    ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED"))
    assert ex.view.order(coid).status == "SUBMITTED"  # type: ignore[union-attr]


def test_an_unknown_order_of_ours_is_adopted_and_not_ordered_again(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    coid = "ex-20260101T000000-AAPL-0badc0de"
    ex.on_fill(
        Fill(exec_id="x.01", client_order_id=coid, symbol="AAPL", side="BUY", quantity=D(50), price=D(100))
    )
    adopted = ex.view.order(coid)
    assert adopted is not None and adopted.why.startswith("adopted") and ex.view.position("AAPL") == D(50)
    assert sends(ex.on_target(target(weight=0.5))) == []  # 50 held: the target is met


def test_a_correction_replaces_the_execution_it_corrects(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    fill(ex, coid, "0001.aa.01.01", "50", "100.00", commission="1")
    cash = ex.view.cash()
    fill(ex, coid, "0001.aa.01.02", "50", "99.50", commission="1")  # IB's correction: a lower price
    assert ex.view.cash() == cash + D(25)  # 50 x 0.50 back
    assert ex.view.position("AAPL") == D(50) and ex.view.positions["AAPL"].avg_cost == D("99.5")
    fill(ex, coid, "0001.aa.01.01", "50", "100.00")  # the old version replayed: nothing
    assert ex.view.cash() == cash + D(25) and ex.view.position("AAPL") == D(50)
    assert [f["exec_id"] for f in ex.view.fills()] == ["0001.aa.01.02"]


def test_a_mismatch_blocks_every_order_of_the_symbol_until_accepted(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    fill(ex, coid, "e1", "50")
    ex.block_mismatch("AAPL", D(50), D(30))
    assert sends(ex.on_target(target(weight=0.0))) == []  # not even reduce-only
    assert "accept-broker" in (ex.resume() or "")
    ex.on_position(Position(symbol="AAPL", quantity=D(30)))
    result, _ = ex.accept_broker("AAPL", D(30), D(101), method="test", operator="me", reason="sold by hand")
    assert (result["ledger_before"], result["broker"]) == ("50", "30") and ex.view.position("AAPL") == D(30)
    assert ex.view.adjustments()[0]["reason"] == "sold by hand"
    assert ex.resume() is None
    closing = sends(ex.on_target(target(weight=0.0)))
    assert [(s.order.side, s.order.quantity) for s in closing] == [("SELL", D(30))]


def test_reduce_only_is_decided_from_the_broker_too(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    fill(ex, coid, "e1", "50")
    ex.on_position(
        Position(symbol="AAPL", quantity=D(0))
    )  # the broker says flat: selling 50 would open a short there
    ex.trip_halt("test", "operator")
    assert sends(ex.on_target(target(weight=0.0))) == []


def test_flatten_closes_in_capped_orders_one_at_a_time(make_executor: Callable[..., Executor]) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id  # 50 shares at ~100
    fill(ex, coid, "e1", "50")
    # 20 shares an order from now on (the limits come from the settings; forced here, after the 50 were bought)
    ex._book.limits = dataclasses.replace(ex._book.limits, max_order_notional=D(2000))
    ex.on_position(Position(symbol="AAPL", quantity=D(50)))
    first = sends(ex.flatten(["AAPL"]))
    assert [(s.order.side, s.order.quantity, s.order.reduce_only) for s in first] == [("SELL", D(20), True)]
    assert sends(ex.flatten_step()) == [] and sends(ex.on_target(target(weight=1.0))) == []  # one at a time
    ex.on_position(Position(symbol="AAPL", quantity=D(30)))
    second = sends(
        fill(ex, first[0].order.client_order_id, "e2", "20")
    )  # the next piece right behind the fill
    assert [(s.order.side, s.order.quantity) for s in second] == [("SELL", D(20))]
    assert not ex.view.halt.halted  # one symbol: the others keep trading


def test_a_halt_cancels_again_until_the_broker_confirms(make_executor: Callable[..., Executor]) -> None:
    wall = WallClock()
    ex = make_executor(wall=wall)
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    assert Cancel(coid) in ex.trip_halt("test", "operator")
    wall.advance(3.0)
    assert Cancel(coid) in ex.enforce_halt()  # the first cancel may have lost the race to its own placement


def test_a_ledger_belongs_to_one_account_and_mode(tmp_path: Path) -> None:
    led = open_ledger(tmp_path / "ledger.sqlite")
    paper = {"account": "DU1111111", "trading_mode": "paper", "execution": "broker"}
    led.claim_identity(paper, paper)
    led.claim_identity(paper, paper)  # the same again: fine
    with pytest.raises(LedgerError, match="DU1111111 paper broker.*DU2222222 paper broker"):
        other = {**paper, "account": "DU2222222"}
        led.claim_identity(other, other)
    with pytest.raises(LedgerError, match="paper local"):
        local = {**paper, "execution": "local"}
        led.claim_identity(local, local)
    led.close()


async def test_accept_broker_is_refused_unless_the_bridge_is_ready(
    make_executor: Callable[..., Executor],
) -> None:
    from procs.executor.accept import accept_broker
    from shared.bus import RequestError
    from shared.messages import AcceptBrokerRequest, GatewayStatus

    ex = make_executor()
    ex.on_gateway(GatewayStatus(state="STALLED"))

    async def never(req: object) -> object:
        raise AssertionError("the broker must not be asked")

    with pytest.raises(RequestError, match="STALLED, not READY"):
        await accept_broker(ex, AcceptBrokerRequest(symbol="AAPL", reason="x"), never)
    with pytest.raises(RequestError, match="not traded"):
        await accept_broker(ex, AcceptBrokerRequest(symbol="NOPE", reason="x"), never)
    assert ex.view.adjustments() == []


def test_an_executor_started_on_another_accounts_ledger_exits_78_naming_both(short_tmp: Path) -> None:
    import os
    import subprocess

    from .cluster import BASE_ENV, PYTHON, REPO

    data = short_tmp / "var" / "data"
    led = open_ledger(data / "ledger.sqlite")
    mine = {"account": "DU1234567", "trading_mode": "paper", "execution": "broker"}
    led.claim_identity(mine, {**mine, "account": "DU****567"})
    led.close()
    env = {**os.environ, **BASE_ENV, "IB_ACCOUNT": "DU7654321", "VAR_DIR": str(short_tmp / "var"),
           "STACK_HOME": str(short_tmp), "PYTHONPATH": str(REPO), "IB_PORT": "14999"}  # fmt: skip
    done = subprocess.run(
        [str(PYTHON), "-m", "procs.executor"], cwd=REPO, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 78
    last = (short_tmp / "var" / "log" / "executor.log").read_text().strip().splitlines()[-1]
    assert "DU****567 paper broker" in last and "DU****321 paper broker" in last, last
    assert "DU7654321" not in last  # the account is masked in every line


def test_a_correction_that_lowers_the_quantity_leaves_nothing_pending(
    make_executor: Callable[..., Executor],
) -> None:
    ex = make_executor()
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id  # BUY 50
    fill(ex, coid, "0002.bb.01.01", "50", "100.00")
    ex.on_order_event(OrderEvent(client_order_id=coid, status="FILLED", filled=D(50)))
    fill(ex, coid, "0002.bb.01.02", "49", "100.00")  # IB corrects: 49 shares filled, not 50
    order = ex.view.order(coid)
    assert order is not None and order.status == "FILLED" and order.pending() == 0
    assert ex.view.working_shares("AAPL") == 0 and coid not in ex.view.working  # settled: no phantom share
    ex.on_position(Position(symbol="AAPL", quantity=D(49)))
    ex.trip_halt("test", "operator")
    closing = sends(ex.on_target(target(weight=0.0)))
    assert [(s.order.side, s.order.quantity, s.order.reduce_only) for s in closing] == [("SELL", D(49), True)]


def test_a_wall_clock_step_expires_nothing_and_ages_no_quote(make_executor: Callable[..., Executor]) -> None:
    from .conftest import quote

    wall, mono = WallClock(), WallClock(start_ns=5 * 10**9)
    ex = make_executor(wall=wall, mono=mono)  # production: time.monotonic_ns
    coid = sends(ex.on_target(target(weight=0.5)))[0].order.client_order_id
    ex.on_order_event(OrderEvent(client_order_id=coid, status="SUBMITTED"))
    wall.advance(3600)  # NTP or a resumed VM steps the wall clock an hour ahead
    assert ex.expire_orders() == []  # the order is seconds old, not an hour
    assert ex.risk_context("AAPL").quote is not None and "quote" not in ex.view.last_rejection
    mono.advance(ex.view.settings.order_timeout_seconds + 1)  # real time passes
    assert Cancel(coid) in ex.expire_orders()
    wall.advance(-7200)  # and a step back hides nothing
    ex.on_quote(quote())
    assert ex.risk_context("AAPL").orders_last_minute == 0  # its creation is long past on the steady clock
