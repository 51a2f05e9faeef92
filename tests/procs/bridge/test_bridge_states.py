"""The bridge's state: socket, IB link, data farms, heartbeat, identity and sync kept apart and folded into one
state with the reason and the remedy; Gateway codes handled by class."""

from __future__ import annotations

import pytest

from procs.bridge.states import (
    STALLED_REMEDY,
    ErrorClass,
    GatewayConditions,
    Phase,
    ReissueAll,
    ReissueStale,
    Warn,
    classify,
    identity_problem,
)


def up(**kw: object) -> GatewayConditions:
    c = GatewayConditions(**kw)  # type: ignore[arg-type]
    c.set_phase(Phase.UP, "session up")
    return c


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1100, ErrorClass.LINK_LOST),
        (2110, ErrorClass.LINK_LOST),
        (1101, ErrorClass.RESTORED_DATA_LOST),
        (1102, ErrorClass.RESTORED),
        (2103, ErrorClass.FARM_BROKEN),
        (2105, ErrorClass.FARM_BROKEN),
        (2104, ErrorClass.FARM_OK),
        (2106, ErrorClass.FARM_OK),
        (2158, ErrorClass.FARM_INACTIVE),
        (10197, ErrorClass.COMPETING_SESSION),
        (100, ErrorClass.PACING),
        (326, ErrorClass.CLIENT_ID_IN_USE),
        (201, ErrorClass.OTHER),
    ],
)
def test_codes_are_handled_by_class(code: int, cls: ErrorClass) -> None:
    assert classify(code) is cls


def test_a_healthy_session_is_ready_and_allows_orders() -> None:
    st = up().status()
    assert st.state == "READY" and st.orders_allowed and not st.data_degraded


def test_readonly_is_ready_but_refuses_orders() -> None:
    st = up(readonly=True).status()
    assert st.state == "READY" and not st.orders_allowed and "read-only" in st.reason


def test_1100_degrades_and_gates_orders_and_a_storm_is_one_transition() -> None:
    c = up()
    c.on_gateway_code(1100, "Connectivity ... lost.", -1, now=1.0)
    first = c.status()
    for _ in range(50):
        assert c.on_gateway_code(1100, "Connectivity ... lost.", -1, now=2.0) == []
    assert c.status() == first
    assert first.state == "DEGRADED" and not first.orders_allowed and "1100" in first.reason


def test_1102_restores_ready_without_resubscribing() -> None:
    c = up()
    c.on_gateway_code(1100, "", -1, now=1.0)
    assert c.on_gateway_code(1102, "", -1, now=2.0) == []
    assert c.status().state == "READY"


def test_1101_restores_ready_and_reissues_every_subscription() -> None:
    c = up()
    c.on_gateway_code(1100, "", -1, now=1.0)
    actions = c.on_gateway_code(1101, "", -1, now=2.0)
    assert [type(a) for a in actions] == [ReissueAll]
    assert c.status().state == "READY"


def test_farm_down_degrades_data_and_farm_ok_reissues_what_stopped_since_the_break() -> None:
    c = up()
    c.on_gateway_code(2103, "Market data farm connection is broken:usfarm", -1, now=5.0)
    st = c.status()
    assert st.state == "DEGRADED" and st.data_degraded and "usfarm" in st.reason
    actions = c.on_gateway_code(2104, "Market data farm connection is OK:usfarm", -1, now=9.0)
    assert actions == [ReissueStale(since=5.0, why=actions[0].why)]  # type: ignore[union-attr]
    assert c.status().state == "READY"


def test_farm_ok_without_a_break_does_nothing() -> None:
    c = up()
    assert c.on_gateway_code(2104, "Market data farm connection is OK:usfarm", -1, now=1.0) == []
    assert c.on_gateway_code(2158, "Sec-def data farm connection is OK:secdefnj", -1, now=1.0) == []
    assert c.status().state == "READY"


def test_10197_is_a_rate_limited_warning_not_a_state_change() -> None:
    c = up()
    actions = c.on_gateway_code(10197, "No market data during competing live session", 5, now=1.0)
    assert len(actions) == 1 and isinstance(actions[0], Warn) and actions[0].every >= 60
    assert c.status().state == "READY"


def test_a_missed_heartbeat_is_stalled_with_the_humans_remedy() -> None:
    c = up()
    c.stalled_reason = "no answer to reqCurrentTime within 10 s while the socket is up"
    st = c.status()
    assert st.state == "STALLED" and st.remedy == STALLED_REMEDY and not st.orders_allowed


def test_identity_beats_stall_beats_link_beats_farm() -> None:
    c = up()
    c.on_gateway_code(2103, "broken:usfarm", -1, now=1.0)
    c.on_gateway_code(1100, "", -1, now=1.0)
    assert "1100" in c.status().reason
    c.stalled_reason = "no answer"
    assert c.status().state == "STALLED"
    c.identity_problem = "wrong account"
    assert c.status().state == "WAITING_FOR_HUMAN"


def test_socket_phase_comes_first_and_a_new_session_starts_clean() -> None:
    c = up()
    c.on_gateway_code(1100, "", -1, now=1.0)
    c.set_phase(Phase.DISCONNECTED, "socket closed; retry 1 in 0.2 s", "none needed")
    assert c.status().state == "DISCONNECTED"
    c.new_session()
    c.set_phase(Phase.UP, "session up")
    assert c.status().state == "READY"


def test_identity_accepts_the_configured_paper_account() -> None:
    assert identity_problem(["DU1234567"], "DU1234567", "paper", 4002) == ("", "")


def test_identity_refuses_an_account_the_gateway_does_not_manage() -> None:
    reason, remedy = identity_problem(["DU7654321"], "DU1234567", "paper", 4002)
    assert "not among" in reason and "DU1234567" not in reason and "DU****567" in reason and remedy


def test_identity_refuses_live_accounts_in_paper_mode_and_paper_accounts_in_live_mode() -> None:
    assert "live accounts" in identity_problem(["DU1234567", "U9999999"], "DU1234567", "paper", 4002)[0]
    assert "paper accounts" in identity_problem(["DU1234567"], "DU1234567", "live", 4001)[0]


# ------------------------------------------------------------------ data farms by kind (issue 14, item 2)


def test_a_market_data_farm_down_allows_reduce_only_orders_and_says_what_it_blocks() -> None:
    c = up()
    c.on_gateway_code(2103, "Market data farm connection is broken:usfarm", -1, now=1.0)
    st = c.status()
    assert (st.state, st.orders_allowed, st.reduce_only, st.data_degraded) == ("DEGRADED", True, True, True)
    assert "market-data farm down (usfarm)" in st.reason and "reduce-only orders and flatten go" in st.reason
    assert "new risk refused" in st.reason


def test_a_read_only_session_stays_closed_to_orders_while_a_farm_is_down() -> None:
    c = up(readonly=True)
    c.on_gateway_code(2103, "Market data farm connection is broken:usfarm.nj", -1, now=1.0)
    assert not c.status().orders_allowed


def test_a_historical_data_farm_down_leaves_orders_alone_and_says_history_waits() -> None:
    c = up()
    c.on_gateway_code(2105, "HMDS data farm connection is broken:ushmds", -1, now=1.0)
    st = c.status()
    assert st.state == "READY" and st.orders_allowed and not st.reduce_only
    assert "historical-data farm down (ushmds)" in st.reason and "warm-ups wait" in st.reason
    assert c.farms_down_of("hmds") == ["ushmds"]
    c.on_gateway_code(2106, "HMDS data farm connection is OK:ushmds", -1, now=2.0)
    assert c.status().reason == "session up, all checks passed" and c.farms_down_of("hmds") == []


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (2103, "Market data farm connection is broken:eufarm"),
        (2103, "Market data farm connection is broken:cashfarm"),
        (2103, "Market data farm connection is broken:usopt"),
        (2105, "HMDS data farm connection is broken:euhmds"),
        (2107, "HMDS data farm connection is inactive but should be available upon demand.ushmds"),
        (2108, "Market data farm connection is inactive but should be available upon demand.usfarm"),
    ],
)
def test_farms_the_stack_does_not_use_and_idle_farms_change_nothing(code: int, text: str) -> None:
    c = up()
    c.on_gateway_code(code, text, -1, now=1.0)
    st = c.status()
    assert st.state == "READY" and st.orders_allowed and st.reason == "session up, all checks passed"


def test_both_kinds_down_name_both_farms_and_the_market_one_decides_the_state() -> None:
    c = up()
    c.on_gateway_code(2105, "HMDS data farm connection is broken:ushmds", -1, now=1.0)
    c.on_gateway_code(2103, "Market data farm connection is broken:usfarm", -1, now=1.0)
    st = c.status()
    assert st.state == "DEGRADED" and st.reduce_only and "usfarm" in st.reason and "ushmds" in st.reason


def test_an_unnamed_farm_counts_on_the_safe_side() -> None:
    c = up()
    c.on_gateway_code(2103, "Market data farm connection is broken", -1, now=1.0)
    assert c.status().state == "DEGRADED"


@pytest.mark.parametrize(
    ("side", "qty", "position", "working", "refused"),
    [
        ("SELL", "10", "10", "0", ""),
        ("SELL", "4", "10", "6", ""),
        ("SELL", "5", "10", "6", "cross zero"),
        ("BUY", "1", "10", "0", "add to"),
        ("SELL", "1", "0", "0", "no position"),
        ("BUY", "0.5", "-0.5", "0", ""),
        ("SELL", "11", "10", "0", "cross zero"),
    ],
)
def test_the_reduce_only_gate_counts_working_orders_and_never_crosses_zero(
    side: str, qty: str, position: str, working: str, refused: str
) -> None:
    from decimal import Decimal

    from procs.bridge.farms import reduce_only_refusal

    why = reduce_only_refusal(side, Decimal(qty), Decimal(position), Decimal(working))
    assert (refused in why) if refused else why == ""
