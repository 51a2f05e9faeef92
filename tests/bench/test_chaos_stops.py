"""The chaos run's protective-stop parts (pure): stops count as ours in the fill checks, and the check that no
position goes without its stop longer than one reconciliation."""

from __future__ import annotations

from bench.chaos_checks import check_fills, check_protection, is_stop_ref, ours


def test_stops_are_ours_and_told_apart() -> None:
    assert ours("st-20260302T153500-AAPL-0a1b2c3d") and is_stop_ref("st-20260302T153500-AAPL-0a1b2c3d")
    assert ours("ex-20260302T153500-AAPL-0a1b2c3d") and not is_stop_ref("ex-20260302T153500-AAPL-0a1b2c3d")
    assert not ours("manual-1") and not is_stop_ref(None)


def test_a_stops_fill_booked_once_passes_and_a_missing_one_is_named() -> None:
    execution = {
        "execId": "e1",
        "orderRef": "st-x",
        "quantity": "10",
        "price": "95",
        "symbol": "AAPL",
        "side": "SLD",
    }
    audit = {"executions": [execution]}
    booked = {"exec_id": "e1", "client_order_id": "st-x", "quantity": "10", "price": "95", "symbol": "AAPL"}
    assert check_fills(audit, [booked]).ok
    missing = check_fills(audit, [])
    assert not missing.ok and "st-x" in missing.line()


def test_unprotected_longer_than_one_reconciliation_is_a_violation() -> None:
    worst = {"AAPL": (4.0, "09:30:01"), "MSFT": (11.5, "09:31:02")}
    verdict = check_protection(worst, reconcile_seconds=5, samples=100, grace=5)
    assert not verdict.ok and "MSFT unprotected 11.5s" in verdict.line() and "AAPL" not in verdict.line()
    assert check_protection({"AAPL": (9.9, "t")}, reconcile_seconds=5, samples=100, grace=5).ok


def test_protection_never_observed_is_a_violation_not_a_pass() -> None:
    verdict = check_protection({}, reconcile_seconds=5, samples=0, grace=5)
    assert not verdict.ok and "never read" in verdict.line()
