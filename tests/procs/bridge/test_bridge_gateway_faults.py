"""The bridge against the real simulator's faults, over real loopback TCP with the real ib_async: READY,
1100/1101/1102, farm flaps, 10197, drops, a silent Gateway, 326, a client-id storm that never comes, identity
checks, nextValidId rollback, and WAITING_FOR_HUMAN. Each test gets a fresh simulator (faults do not leak)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from ib_async import IB
from loguru import logger

from procs.bridge.states import STALLED_REMEDY
from procs.gateway_sim.inprocess import GatewaySim
from shared.bus import RequestError
from shared.messages import Alert, GatewayStatus, HealthRequest, PlaceOrder
from tests.procs.bridge.bridge_harness import LiveBridge, bridge_settings, live_bridge, run, wait_until

SPEED = 60.0  # five-second bars every 83 ms


@pytest.fixture
def sim(stack_env: Path) -> Iterator[GatewaySim]:
    with GatewaySim(speed=SPEED) as gateway:
        yield gateway


def resting_buy(cid: str) -> PlaceOrder:
    return PlaceOrder(
        client_order_id=cid, symbol="AAPL", side="BUY", quantity=Decimal(1), limit_price=Decimal("1.00")
    )


def only_session(sim: GatewaySim) -> dict[str, object]:
    sessions = sim.status()["sessions"]
    assert len(sessions) == 1, sessions
    return dict(sessions[0])


def streams_live(sim: GatewaySim, n: int) -> bool:
    sessions = sim.status()["sessions"]
    return len(sessions) == 1 and sessions[0]["realtime_bars"] == n and sessions[0]["market_data_lines"] == n


def states(bridge_published: Sequence[tuple[float, str, object]]) -> list[str]:
    return [m.state for _, t, m in bridge_published if t == "gateway" and isinstance(m, GatewayStatus)]


def test_connects_ready_with_its_identity_and_every_subscription_live(sim: GatewaySim) -> None:
    async def go() -> object:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            await wait_until(lambda: streams_live(sim, 2), "2 bar + 2 quote subscriptions at the simulator")
            await b.wait_bars({"AAPL", "MSFT"}, since=time.monotonic())
            await wait_until(lambda: b.session.rtt_ms is not None, "a heartbeat round trip")
            return await b.api.health(HealthRequest())

    health = run(go())
    assert (health.state, health.client_id, health.server_version) == ("READY", 1, 178)  # type: ignore[attr-defined]
    assert health.accounts == ["DU****567"] and health.subscriptions == 4  # type: ignore[attr-defined]
    assert health.heartbeat_rtt_ms is not None and health.last_bar_age_s is not None  # type: ignore[attr-defined]


def test_1100_degrades_and_gates_orders_once_until_1102_restores_ready(sim: GatewaySim) -> None:
    async def go() -> tuple[list[str], float, str]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            for _ in range(5):  # a 1100 storm is one transition
                sim.error(1100)
            await b.wait_state("DEGRADED")
            with pytest.raises(RequestError, match="orders refused while the Gateway is DEGRADED"):
                await b.api.place_order(resting_buy("during-1100"))
            sim.error(1102)
            await b.wait_state("READY")
            ack = await b.api.place_order(resting_buy("after-1102"))
            await wait_until(lambda: sim.status()["open_orders"], "the order at the simulator")
            return states(b.published), b.session.counters["connect_attempts"], ack.status

    seen, attempts, status = run(go())
    assert seen.count("DEGRADED") == 1 and seen[seen.index("DEGRADED") + 1] == "READY"
    assert attempts == 1 and status == "NEW"  # the socket was never torn down
    assert [o["order_ref"] for o in sim.status()["open_orders"]] == ["after-1102"]


def test_1101_reissues_every_subscription_and_bars_resume(sim: GatewaySim) -> None:
    async def go() -> tuple[float, float]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            await wait_until(lambda: streams_live(sim, 2), "subscriptions at the simulator")
            sim.error(1100)
            sim.error(1101)  # the simulator forgets every subscription, as a Gateway does
            after = time.monotonic()
            await wait_until(lambda: streams_live(sim, 2), "subscriptions re-issued at the simulator")
            await b.wait_bars({"AAPL", "MSFT"}, since=after)
            return b.session.counters["resubscribe_rounds"], b.session.counters["connect_attempts"]

    rounds, attempts = run(go())
    assert rounds == 1 and attempts == 1


def test_a_farm_flap_degrades_data_and_reissues_market_data_that_stopped(sim: GatewaySim) -> None:
    async def go() -> tuple[bool, float]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            await wait_until(lambda: streams_live(sim, 2), "subscriptions at the simulator")
            sim.error(2103)
            await b.wait_state("DEGRADED")
            degraded = b.session.status().data_degraded
            sim.error(2104)
            await b.wait_state("READY")
            await b.wait_bars({"AAPL", "MSFT"}, since=time.monotonic())
            return degraded, b.session.counters.get("resubscribe_rounds", 0)

    degraded, rounds = run(go())
    assert degraded and rounds == 1


def order(cid: str, side: str, quantity: str, limit: str) -> PlaceOrder:
    return PlaceOrder(
        client_order_id=cid,
        symbol="AAPL",
        side=side,  # type: ignore[arg-type]
        quantity=Decimal(quantity),
        limit_price=Decimal(limit),
    )


def gateway_aapl(b: LiveBridge) -> Decimal:
    """The Gateway's AAPL position as the bridge's broker holds it (no request sent)."""
    return b.session.broker.exposure(order("probe", "BUY", "1", "1"))[0]


def test_a_market_data_farm_down_refuses_new_risk_but_lets_reducing_orders_through(sim: GatewaySim) -> None:
    """2103 for usfarm: buying more is refused with the farm named; selling part of the position goes, also while
    a reducing order already works (never past zero); a farm the stack does not use (eufarm) changes nothing."""

    async def go() -> tuple[str, str, str, str]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            await b.api.place_order(order("open", "BUY", "5", "400.00"))  # marketable: fills at once
            await wait_until(lambda: gateway_aapl(b) == 5, "5 AAPL at the Gateway")
            sim.error(2103, message="Market data farm connection is broken:eufarm")
            sim.error(2103)  # usfarm
            await b.wait_state("DEGRADED")
            reason = b.session.status().reason
            with pytest.raises(RequestError, match="BUY 1 AAPL is not reduce-only: it would add") as adding:
                await b.api.place_order(order("more", "BUY", "1", "400.00"))
            resting = await b.api.place_order(order("rest", "SELL", "3", "9999.00"))  # reduces, stays working
            await wait_until(lambda: sim.status()["open_orders"], "the resting sell at the simulator")
            with pytest.raises(RequestError, match="cross zero") as crossing:
                await b.api.place_order(order("too-much", "SELL", "3", "1.00"))
            close = await b.api.place_order(order("close", "SELL", "2", "1.00"))  # the rest: fills at once
            await wait_until(lambda: gateway_aapl(b) == 3, "2 sold during the outage")
            return reason, str(adding.value), f"{resting.status} {close.status}", str(crossing.value)

    reason, adding, acks, crossing = run(go(), timeout=60)
    assert "market-data farm down (usfarm)" in reason and "eufarm" not in reason
    assert "usfarm" in adding and acks == "NEW NEW" and "already being reduced by 3)" in crossing
    refs = {o["orderRef"] for o in sim.audit()["orders"]}
    assert {"open", "rest", "close"} <= refs and not refs & {"more", "too-much"}


def test_a_historical_data_farm_down_leaves_orders_alone_and_history_waits(sim: GatewaySim) -> None:
    """2105 for ushmds: the bridge stays READY and places orders; a history request is refused with the farm named
    (never answered with nothing, which a warm-up would take for no history) until 2106."""
    from shared.messages import HistoryRequest

    async def go() -> tuple[str, str, str, int]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            sim.error(2105)
            await wait_until(lambda: b.session.conditions.farms_down_of("hmds"), "the HMDS farm down")
            st = b.session.status()
            ack = await b.api.place_order(resting_buy("during-2105"))
            req = HistoryRequest(symbol="MSFT", bar_seconds=60, duration_seconds=3600)
            with pytest.raises(RequestError, match=r"historical-data farm down \(ushmds\)") as refused:
                await b.api.history(req)
            sim.error(2106)
            await wait_until(lambda: not b.session.conditions.farms_down_of("hmds"), "the HMDS farm OK")
            bars = await b.api.history(req)
            return f"{st.state} {st.orders_allowed}", st.reason, f"{ack.status} {refused.value}", len(bars)

    state, reason, outcome, bars = run(go(), timeout=60)
    assert state == "READY True" and "warm-ups wait" in reason
    assert outcome.startswith("NEW ") and "retry when IB reports it OK" in outcome and bars > 0


def test_10197_is_one_warning_per_interval_and_no_reconnect(sim: GatewaySim) -> None:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING", format="{message}")

    async def go() -> tuple[float, str]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            # once the subscriptions are in: a market-data request during a competing session is answered with
            # a 10197 of its own, and that would be a fourth
            await wait_until(lambda: streams_live(sim, 2), "subscriptions at the simulator")
            for _ in range(3):
                sim.error(10197)
            await wait_until(lambda: b.session.counters.get("code_10197") == 3, "three 10197")
            return b.session.counters["connect_attempts"], b.state()

    try:
        attempts, state = run(go())
    finally:
        logger.remove(sink)
    assert sum("10197" in line for line in lines) == 1
    assert attempts == 1 and state == "READY"


def test_a_drop_reconnects_with_the_same_client_id_and_every_subscription_and_bars_resume(
    sim: GatewaySim,
) -> None:
    async def go() -> tuple[list[str], int]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            gen = b.session.generation
            sim.drop()
            await wait_until(lambda: b.session.generation == gen + 1 and b.state() == "READY", "READY again")
            back = time.monotonic()
            await wait_until(lambda: streams_live(sim, 2), "every subscription re-issued at the simulator")
            await b.wait_bars({"AAPL", "MSFT"}, since=back)
            health = await b.api.health(HealthRequest())
            assert only_session(sim)["client_id"] == 1
            return states(b.published), health.reconnects

    seen, reconnects = run(go())
    assert "DISCONNECTED" in seen[seen.index("READY") :] and seen[-1] == "READY"
    assert reconnects == 1


def test_a_silent_gateway_is_stalled_within_the_heartbeat_budget_and_the_socket_is_kept(
    sim: GatewaySim,
) -> None:
    settings = bridge_settings(sim.port)
    budget = settings.bridge_heartbeat_seconds + settings.bridge_heartbeat_timeout

    async def go() -> tuple[str, float, float]:
        async with live_bridge(settings) as b:
            await b.wait_state("READY")
            sim.silent(True)
            await b.wait_state("STALLED", timeout=budget + 3.0)
            remedy = b.session.status().remedy
            peer = only_session(sim)["peer_port"]
            sim.silent(False)
            await b.wait_state("READY", timeout=budget + 3.0)
            assert only_session(sim)["peer_port"] == peer  # the same socket all along
            alerts = [m for m in b.messages("alert") if m.code == "gateway.stalled"]
            return remedy, b.session.counters["connect_attempts"], len(alerts)

    remedy, attempts, alerts = run(go())
    assert remedy == STALLED_REMEDY and attempts == 1 and alerts == 1


def test_326_backs_off_and_retries_with_the_same_client_id(sim: GatewaySim) -> None:
    async def go() -> tuple[list[float], str, int]:
        other = IB()  # another program holding our client id
        await other.connectAsync("127.0.0.1", sim.port, clientId=1, timeout=5)
        refused_at: list[float] = []
        try:
            async with live_bridge(bridge_settings(sim.port)) as b:
                heard = b.session.broker.on_error

                def on_error(req_id: int, code: int, text: str) -> None:
                    if code == 326:
                        refused_at.append(time.monotonic())
                    heard(req_id, code, text)

                b.session.broker.on_error = on_error
                await wait_until(lambda: len(refused_at) >= 2, "two 326 refusals", timeout=6)
                # the error arrives before the failed attempt is handled: the state's reason follows it shortly
                reason = await wait_until(
                    lambda: "326" in b.session.status().reason and b.session.status().reason,
                    "326 as the reason",
                )
                other.disconnect()
                await b.wait_state("READY", timeout=5)
                assert only_session(sim)["client_id"] == 1
                return refused_at, reason, b.session.broker.client_id
        finally:
            other.disconnect()

    refused_at, reason, client_id = run(go())
    assert "326" in reason
    assert refused_at[1] - refused_at[0] >= 1.0  # waited for the old session, no storm
    assert client_id == 1


def test_an_account_the_gateway_does_not_manage_waits_for_a_human_and_refuses_orders(sim: GatewaySim) -> None:
    async def go() -> tuple[str, list[Alert]]:
        async with live_bridge(bridge_settings(sim.port, ib_account="DU7654321")) as b:
            await b.wait_state("WAITING_FOR_HUMAN")
            with pytest.raises(RequestError, match="WAITING_FOR_HUMAN"):
                await b.api.place_order(resting_buy("wrong-account"))
            await asyncio.sleep(0.5)  # heartbeats go on; nothing is subscribed, nothing reconnects
            session = only_session(sim)  # the session is kept: no churn while the human fixes it
            assert session["realtime_bars"] == 0 and b.session.counters["connect_attempts"] == 1
            return b.session.status().reason, [m for m in b.messages("alert") if m.code == "gateway.identity"]

    reason, alerts = run(go())
    assert "DU****321" in reason and "not among" in reason and len(alerts) == 1
    assert sim.status()["open_orders"] == []


def test_after_too_many_failures_it_waits_for_a_human_with_one_alert_then_recovers(sim: GatewaySim) -> None:
    settings = bridge_settings(
        sim.port, reconnect_max_failures=3, reconnect_backoff_max=0.2, waiting_retry_seconds=1.0
    )
    sim.listen(False)

    async def go() -> tuple[int, float, list[str]]:
        async with live_bridge(settings) as b:
            await b.wait_state("WAITING_FOR_HUMAN", timeout=5)
            await wait_until(lambda: b.session.counters["connect_attempts"] >= 5, "slow retries", timeout=5)
            sim.listen(True)
            await b.wait_state("READY", timeout=5)
            codes = [m.code for m in b.messages("alert")]
            return codes.count("gateway.waiting_for_human"), b.session.counters["connect_attempts"], codes

    waiting_alerts, attempts, codes = run(go())
    assert waiting_alerts == 1 and "gateway.recovered" in codes
    assert attempts <= 8  # ~3 fast tries, then one per second: no storm


def test_a_rolled_back_next_valid_id_never_reuses_an_order_id(sim: GatewaySim) -> None:
    async def go() -> tuple[int, int, float]:
        async with live_bridge(bridge_settings(sim.port)) as b:
            await b.wait_state("READY")
            first = await b.api.place_order(resting_buy("before-drop"))
            await wait_until(lambda: sim.status()["open_orders"], "the first order at the simulator")
            sim.next_id_rollback(1)
            gen = b.session.generation
            sim.drop()
            await wait_until(lambda: b.session.generation == gen + 1 and b.state() == "READY", "READY again")
            second = await b.api.place_order(resting_buy("after-drop"))
            await wait_until(lambda: len(sim.status()["open_orders"]) == 2, "both orders at the simulator")
            return first.order_id, second.order_id, b.session.counters.get("code_103", 0)

    first, second, dup_errors = run(go())
    assert second > first and dup_errors == 0
