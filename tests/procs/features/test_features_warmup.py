"""When the feature program warms up again (warmup.py, pure): only when the bridge's session comes back, never on a
farm flap, and the Gateway's clock only moves forward."""

from __future__ import annotations

from procs.features.warmup import GatewayWatch, history_request

NS = 10**9


def test_a_session_that_comes_back_needs_a_new_warm_up_but_a_farm_flap_does_not() -> None:
    watch = GatewayWatch()
    assert watch.on_status("CONNECTING", 0) == "" and not watch.up
    assert watch.on_status("READY", 0) == "" and watch.up  # the first session: the start-up warm-up covers it
    assert watch.on_status("DEGRADED", 0) == "" and watch.up  # a farm down: history still comes, no bar lost
    assert watch.on_status("READY", 0) == ""
    assert watch.on_status("DISCONNECTED", 0) == "" and not watch.up
    assert watch.on_status("READY", 0) == "gateway READY again" and watch.up


def test_the_gateways_clock_is_the_latest_good_bar_end_or_status_time() -> None:
    watch = GatewayWatch()
    assert watch.clock_ns is None
    watch.on_good_bar(100 * NS, 60)
    assert watch.clock_ns == 160 * NS
    watch.on_status("READY", 150 * NS)  # an older status time never moves it back
    assert watch.clock_ns == 160 * NS
    watch.on_status("READY", 200 * NS)
    assert watch.clock_ns == 200 * NS


def test_history_asks_one_bar_more_than_the_warm_up_needs_in_a_size_the_gateway_serves() -> None:
    req = history_request("AAPL", 60, 200)
    assert (req.symbol, req.bar_seconds, req.duration_seconds) == ("AAPL", 60, 201 * 60)
