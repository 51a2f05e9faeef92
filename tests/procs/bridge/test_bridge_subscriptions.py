"""The subscription registry: every spec is issued once per session generation, re-issued after a reconnect or
1101, and the ones whose data stopped are found for re-issue when a farm comes back."""

from __future__ import annotations

from procs.bridge.subscriptions import SubscriptionRegistry, SubscriptionSpec

BARS_A = SubscriptionSpec("bars", "AAPL")
QUOTES_A = SubscriptionSpec("quotes", "AAPL")
BARS_M = SubscriptionSpec("bars", "MSFT")


def registry() -> SubscriptionRegistry:
    r = SubscriptionRegistry()
    for spec in (BARS_A, QUOTES_A, BARS_M):
        assert r.add(spec)
    assert not r.add(BARS_A)
    return r


def issue_all(r: SubscriptionRegistry, gen: int, now: float) -> None:
    for spec in r.to_issue(gen):
        r.issued(spec, gen, now, handle=object())


def test_every_spec_is_issued_in_a_new_generation_and_only_once() -> None:
    r = registry()
    assert r.to_issue(1) == [BARS_A, QUOTES_A, BARS_M]
    issue_all(r, 1, now=0.0)
    assert r.to_issue(1) == [] and r.live_count(1) == 3
    assert r.to_issue(2) == [BARS_A, QUOTES_A, BARS_M]  # after a reconnect
    issue_all(r, 2, now=1.0)
    assert r.reissues == 3


def test_invalidate_all_makes_every_spec_due_again_in_the_same_session() -> None:
    r = registry()
    issue_all(r, 1, now=0.0)
    assert len(r.invalidate()) == 3
    assert r.to_issue(1) == [BARS_A, QUOTES_A, BARS_M] and r.live_count(1) == 0


def test_stale_since_finds_streams_without_data_since_the_farm_broke() -> None:
    r = registry()
    issue_all(r, 1, now=0.0)
    r.data_seen(BARS_A, now=4.0)
    r.data_seen(QUOTES_A, now=6.0)
    assert r.stale_since(5.0) == [BARS_A, BARS_M]
    assert r.last_data("bars") == 4.0 and r.last_data("quotes") == 6.0


def test_a_spec_only_leaves_when_removed() -> None:
    r = registry()
    r.invalidate([BARS_A])
    assert BARS_A in r.specs()
    assert r.remove(BARS_A) is not None and BARS_A not in r.specs() and len(r) == 2
