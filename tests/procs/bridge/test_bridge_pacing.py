"""The pacing rules: the bridge's one limiter never lets a 1-second window hold more than its limit (at most 49,
under IB's 50) whatever the arrival pattern, yet lets a burst go at once; and the historical pacer enforces 60
per 10 minutes, no identical request within 15 s, at most 5 per contract in 2 s."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procs.bridge.pacing import HistoryPacer, SlidingWindow, gateway_limiter, order_reserve


def max_in_window(times: list[float], window: float = 1.0) -> int:
    best, q = 0, deque[float]()
    for t in times:
        q.append(t)
        while t - q[0] > window:  # closed window [t-1, t]: the strict reading of "per second"
            q.popleft()
        best = max(best, len(q))
    return best


def paced_send_times(limiter: SlidingWindow, arrivals: list[float]) -> list[float]:
    """What the outbox does: queue each arrival, send whenever the limiter allows, wake when it says to."""
    queue: deque[float] = deque()
    sent: list[float] = []
    pending = sorted(arrivals)
    now = 0.0
    while pending or queue:
        while pending and pending[0] <= now:
            queue.append(pending.pop(0))
        while queue and limiter.try_take(now):
            queue.popleft()
            sent.append(now)
        wake = [pending[0]] if pending else []
        if queue:
            wake.append(now + limiter.wait_time(now))
        if wake:
            now = max(now, min(wake))
    return sent


# arrivals: bursts (many at one instant) mixed with scattered messages, over a few seconds
arrival_patterns = st.lists(
    st.tuples(st.floats(min_value=0, max_value=4, allow_nan=False), st.integers(min_value=1, max_value=60)),
    min_size=1,
    max_size=25,
).map(lambda bursts: [t for t, n in bursts for _ in range(n)])


@settings(max_examples=150, deadline=None)
@given(rate=st.floats(min_value=1, max_value=50), arrivals=arrival_patterns)
def test_the_gateway_limiter_never_lets_a_second_hold_more_than_its_limit(
    rate: float, arrivals: list[float]
) -> None:
    limiter = gateway_limiter(rate)
    sent = paced_send_times(limiter, arrivals)
    assert len(sent) == len(arrivals)  # everything goes out in the end
    assert max_in_window(sent) <= min(int(rate), 49)


@settings(max_examples=100, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=60),
    steps=st.lists(st.floats(min_value=0, max_value=0.5, allow_nan=False), min_size=1, max_size=300),
)
def test_a_sliding_window_counts_any_pattern_of_tries_exactly(limit: int, steps: list[float]) -> None:
    w = SlidingWindow(limit=limit, window=1.0)
    now = 0.0
    sent: list[float] = []
    refused: list[float] = []
    for step in steps:
        now += step
        wait = w.wait_time(now)
        took = w.try_take(now)
        assert took == (wait == 0.0)  # it says "wait" exactly when it refuses
        (sent if took else refused).append(now)
    # message i and message i + limit are at least a window apart (exactly a window apart is allowed: the
    # Gateway's own window is 1.05 s, so that is still strictly under the limit in any closed second)
    assert all(b - a >= 1.0 for a, b in zip(sent, sent[limit:], strict=False))
    # never timid: each refusal was forced by `limit` messages sent less than a second before it
    assert all(sum(1 for s in sent if 0 <= t - s < 1.0) == limit for t in refused)


@settings(max_examples=100, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=49),
    tries=st.lists(
        st.tuples(st.floats(min_value=0, max_value=0.3, allow_nan=False), st.booleans()),
        min_size=1,
        max_size=300,
    ),
)
def test_a_reserve_is_left_to_orders_in_any_pattern(limit: int, tries: list[tuple[float, bool]]) -> None:
    keep = order_reserve(limit)
    w = SlidingWindow(limit=limit, window=1.0)
    now, sent, other = 0.0, [], []
    for step, is_order in tries:
        now += step
        k = 0 if is_order else keep
        wait = w.wait_time(now, k)
        took = w.try_take(now, k)
        assert took == (wait == 0.0)
        if took:
            sent.append(now)
            if not is_order:
                other.append(now)
        else:  # refused only when the window holds limit - k messages sent less than a second before
            assert sum(1 for s in sent if 0 <= now - s < 1.0) >= limit - k
    assert max_in_window(sent) <= limit
    assert max_in_window(other) <= limit - keep  # the rest of the traffic never takes the reserve


def test_the_reserve_is_half_the_window() -> None:
    assert [order_reserve(n) for n in (49, 45, 40, 20, 3, 1)] == [24, 22, 20, 10, 1, 0]


def test_a_burst_of_20_orders_goes_at_once_then_the_window_holds() -> None:
    w = gateway_limiter(40)
    assert all(w.try_take(10.0) for _ in range(40))  # 20 orders (and more) leave in the same instant
    assert not w.try_take(10.5)
    assert w.wait_time(10.5) == pytest.approx(0.55)  # the burst leaves the (slightly long) window
    assert w.try_take(11.05)


def test_the_limit_stays_under_ibs_50_and_nonsense_is_refused() -> None:
    assert gateway_limiter(50).limit == 49
    assert gateway_limiter(0.5).limit == 1
    with pytest.raises(ValueError):
        SlidingWindow(limit=0, window=1.0)


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
