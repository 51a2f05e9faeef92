"""EXECUTION=local: fills at the touch moved by the slippage, IB-like commission, limits rest until met."""

from __future__ import annotations

from decimal import Decimal

from procs.executor.local import LocalBroker, ib_commission, slipped_price
from procs.executor.orders import OrderRecord
from procs.executor.sizing import QuoteSnapshot
from shared.messages import Fill, OrderEvent

D = Decimal
Q = QuoteSnapshot(D("99.99"), D("100.01"), D(100), 1)


LIMIT = D("100.26")


def order(side: str = "BUY", limit: Decimal | None = LIMIT) -> OrderRecord:
    return OrderRecord("ex-1", "AAPL", side, D(100), "LMT" if limit else "MKT", limit)  # type: ignore[arg-type]


def test_commission_is_ib_fixed_pricing() -> None:
    assert ib_commission(D(100), D(100), D("0.005")) == D("1.00")  # minimum
    assert ib_commission(D(1000), D(100), D("0.005")) == D("5.000")
    assert ib_commission(D(1000), D("0.10"), D("0.005")) == D("1.0000")  # at most 1% of 100.00


def test_slippage_moves_the_price_against_the_order_in_ticks() -> None:
    assert slipped_price("BUY", Q, D(2), D("0.01")) == D("100.04")  # 100.01 * 1.0002 = 100.030002 -> up
    assert slipped_price("SELL", Q, D(2), D("0.01")) == D("99.97")  # 99.970002 -> down


def test_a_marketable_order_fills_whole_with_commission() -> None:
    broker = LocalBroker(D(2), D("0.005"), {"AAPL": D("0.01")})
    events = broker.place(order(), Q, now_ns=5)
    statuses = [e.status for e in events if isinstance(e, OrderEvent)]
    fills = [e for e in events if isinstance(e, Fill)]
    assert statuses == ["SUBMITTED", "FILLED"]
    assert len(fills) == 1 and fills[0].quantity == D(100) and fills[0].price == D("100.04")
    assert fills[0].commission == D("1.00") and fills[0].client_order_id == "ex-1"
    assert not broker.resting


def test_a_limit_the_price_does_not_meet_rests_until_a_quote_does() -> None:
    broker = LocalBroker(D(2), D("0.005"), {"AAPL": D("0.01")})
    events = broker.place(order(limit=D("100.00")), Q)
    assert [e.status for e in events if isinstance(e, OrderEvent)] == ["SUBMITTED"]
    assert broker.on_quote("AAPL", Q) == []
    lower = QuoteSnapshot(D("99.90"), D("99.95"), D("99.93"), 2)
    fills = [e for e in broker.on_quote("AAPL", lower) if isinstance(e, Fill)]
    assert len(fills) == 1 and fills[0].price == D("99.97")


def test_cancel_answers_cancelled_once() -> None:
    broker = LocalBroker(D(2), D("0.005"), {})
    broker.place(order(limit=D(1)), Q)
    assert [e.status for e in broker.cancel("ex-1") if isinstance(e, OrderEvent)] == ["CANCELLED"]
    assert broker.cancel("ex-1") == []
