"""The pacing rules: the bridge's one bucket never lets a 1-second window exceed IB's 50 messages, and the
historical pacer enforces 60 per 10 minutes, no identical request within 15 s, at most 5 per contract in 2 s."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procs.bridge.pacing import HistoryPacer, TokenBucket, gateway_bucket


def greedy_send_times(bucket: TokenBucket, seconds: float, step: float = 0.001) -> list[float]:
    """A sender that tries to send on every tick: the times the bucket let messages through."""
    sent: list[float] = []
    t = 0.0
    while t < seconds:
        while bucket.try_take(t):
            sent.append(t)
        t = round(t + step, 6)
    return sent


def max_in_window(times: list[float], window: float = 1.0) -> int:
    best, q = 0, deque[float]()
    for t in times:
        q.append(t)
        while t - q[0] > window:  # closed window [t-1, t]: the strict reading of "per second"
            q.popleft()
        best = max(best, len(q))
    return best


@settings(max_examples=25, deadline=None)
@given(rate=st.floats(min_value=1, max_value=50))
def test_gateway_bucket_never_exceeds_50_in_any_second(rate: float) -> None:
    times = greedy_send_times(gateway_bucket(rate), seconds=3.0)
    assert max_in_window(times) <= 49
    # and it is not so timid that it wastes the allowance it was given
    assert len(times) >= min(rate, 48) * 3.0 * 0.95


def test_token_bucket_says_how_long_to_wait() -> None:
    b = TokenBucket(rate=10, capacity=2)
    assert b.try_take(0.0) and b.try_take(0.0)
    assert not b.try_take(0.0)
    assert b.wait_time(0.0) == pytest.approx(0.1)
    assert b.try_take(0.1)


def test_token_bucket_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, capacity=1)


def test_history_pacer_allows_60_per_10_minutes_then_names_the_rule() -> None:
    p = HistoryPacer()
    for i in range(60):
        assert p.check(("r", i), f"S{i % 20}", now=i * 3.0).wait == 0
        p.record(("r", i), f"S{i % 20}", now=i * 3.0)
    v = p.check(("r", 60), "NEW", now=180.0)
    assert v.wait == pytest.approx(600.0 - 180.0)
    assert "60 requests per 10 minutes" in v.rule
    assert p.check(("r", 60), "NEW", now=600.0).wait == 0  # the first one left the window


def test_history_pacer_refuses_an_identical_request_within_15_s() -> None:
    p = HistoryPacer()
    p.record("same", "AAPL", now=100.0)
    v = p.check("same", "AAPL", now=105.0)
    assert v.identical_recent and v.wait == pytest.approx(10.0)
    assert p.check("other", "MSFT", now=105.0).wait == 0
    assert p.check("same", "AAPL", now=115.0).wait == 0


def test_history_pacer_allows_five_per_contract_in_two_seconds() -> None:
    p = HistoryPacer()
    for i in range(5):
        p.record(("aapl", i), "AAPL", now=10.0 + i * 0.1)
    v = p.check(("aapl", 5), "AAPL", now=10.5)
    assert v.wait == pytest.approx(1.5)
    assert "per contract" in v.rule
    assert p.check(("msft", 0), "MSFT", now=10.5).wait == 0
    assert p.used(now=10.5) == 5
