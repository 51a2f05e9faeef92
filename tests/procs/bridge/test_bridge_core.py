"""Reconnect policy: capped exponential backoff with jitter, 326 waits for the old session, a short-lived session
counts as a failure (no connect/drop storm), and WAITING_FOR_HUMAN comes with exactly one alert."""

from __future__ import annotations

import random

import pytest

from procs.bridge.core import Failure, ReconnectPolicy, backoff_delay


def policy(**kw: object) -> ReconnectPolicy:
    defaults: dict[str, object] = dict(
        base=0.25, cap=30.0, max_failures=10, waiting_retry=300.0, rng=random.Random(7)
    )
    defaults.update(kw)
    return ReconnectPolicy(**defaults)  # type: ignore[arg-type]


def test_backoff_doubles_until_the_cap_with_jitter_inside_bounds() -> None:
    rng = random.Random(1)
    for n in range(1, 15):
        raw = min(30.0, 0.25 * 2 ** (n - 1))
        d = backoff_delay(n, 0.25, 30.0, 0.5, rng)
        assert raw * 0.5 <= d <= raw
    assert backoff_delay(40, 0.25, 30.0, 0.0, rng) == 30.0


def test_consecutive_refusals_back_off_exponentially_and_never_exceed_the_cap() -> None:
    p = policy(jitter=0.0)
    delays = [p.after_failure(Failure.REFUSED).delay for _ in range(9)]
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0]
    assert max(delays) <= 30.0
    assert delays == sorted(delays)


def test_jitter_spreads_the_retries_of_identical_failures() -> None:
    delays = {policy(rng=random.Random(seed)).after_failure(Failure.TIMEOUT).delay for seed in range(20)}
    assert len(delays) > 10


def test_client_id_in_use_waits_at_least_the_floor() -> None:
    p = policy(client_id_floor=1.0)
    d = p.after_failure(Failure.CLIENT_ID_IN_USE)
    assert d.delay >= 1.0 and not d.waiting


def test_after_max_failures_it_waits_for_a_human_with_one_alert_and_slow_retries() -> None:
    p = policy(max_failures=3, waiting_retry=300.0)
    decisions = [p.after_failure(Failure.TIMEOUT) for _ in range(8)]
    assert [d.waiting for d in decisions] == [False, False, True, True, True, True, True, True]
    assert sum(d.alert for d in decisions) == 1
    assert all(270.0 <= d.delay <= 300.0 for d in decisions[2:])


def test_recovery_ends_waiting_once() -> None:
    p = policy(max_failures=1)
    assert p.after_failure(Failure.REFUSED).waiting
    assert p.after_ready() is True
    assert p.after_ready() is False


def test_a_stable_session_that_drops_is_retried_at_once() -> None:
    p = policy(jitter=0.0, stable_seconds=10.0)
    for _ in range(5):
        p.after_failure(Failure.REFUSED)
    d = p.after_session_lost(lived_seconds=60.0)
    assert d.delay == pytest.approx(0.25) and d.failures == 1


def test_sessions_that_die_young_back_off_like_failures() -> None:
    p = policy(jitter=0.0, stable_seconds=10.0)
    delays = [p.after_session_lost(lived_seconds=0.5).delay for _ in range(5)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0]
