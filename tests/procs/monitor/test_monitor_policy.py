"""The alert policy (pure): level, dedup by kind and subject, recoveries only after their alert, the rate limit
with one summary; and the dead-man's decision."""

from __future__ import annotations

from procs.monitor import notices as nt
from procs.monitor.deadman import GRACE, DeadmanFacts, decide, fail_url
from procs.monitor.policy import AlertPolicy
from shared.messages import Alert, GatewayStatus, RiskState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy(level: str = "WARNING") -> tuple[AlertPolicy, Clock]:
    clock = Clock()
    return AlertPolicy(level=level, clock=clock), clock


def outcomes(p: AlertPolicy, notice: nt.Notice) -> list[str]:
    return [v.outcome for v in p.decide(notice)]


def test_a_state_is_said_once_per_change_and_its_recovery_only_after_it() -> None:
    p, clock = policy()
    stalled = nt.from_gateway_status(GatewayStatus(state="STALLED", reason="no heartbeat answer"))
    ready = nt.from_gateway_status(GatewayStatus(state="READY"))
    assert stalled is not None and ready is not None
    assert outcomes(p, ready) == ["quiet"]  # READY at start-up: nothing to recover from
    assert outcomes(p, stalled) == ["due"]
    clock.now += 5000  # a state stays said however long it lasts
    assert outcomes(p, stalled) == ["duplicate"]
    # the bridge's own alert for the same state is the same notice
    assert outcomes(
        p, nt.from_alert(Alert(severity="WARNING", code="gateway.stalled", message="x"), "bridge")
    ) == ["duplicate"]
    assert outcomes(p, ready) == ["due"]
    assert outcomes(p, ready) == ["duplicate"]


def test_below_the_level_nothing_is_sent_and_so_no_recovery_either() -> None:
    p, _ = policy("CRITICAL")
    risk_on = nt.from_risk_state(RiskState(halted=False, circuit_open=True))
    assert [v.outcome for n in risk_on for v in p.decide(n)] == ["quiet", "below_level"]
    risk_off = nt.from_risk_state(RiskState(halted=True, halt_reason="daily loss", circuit_open=False))
    got = [v for n in risk_off for v in p.decide(n)]
    assert [v.outcome for v in got] == [
        "due",
        "quiet",
    ]  # the halt is CRITICAL; the breaker's close has no alert
    assert "daily loss" in got[0].notice.text() and "bin/trader resume" in got[0].notice.text()


def test_waiting_for_human_names_the_2fa_login() -> None:
    notice = nt.from_gateway_status(GatewayStatus(state="WAITING_FOR_HUMAN", reason="login failed"))
    assert notice is not None and notice.severity == "CRITICAL" and "2FA" in notice.text()


def test_an_event_repeats_only_after_the_dedup_window_or_when_it_differs() -> None:
    p, clock = policy()

    def alert(msg: str) -> nt.Notice:
        return nt.from_alert(
            Alert(
                severity="WARNING", code="watchdog.heartbeat", message=msg, evidence={"target": "features"}
            ),
            "watchdog",
        )

    assert outcomes(p, alert("hung")) == ["due"]
    assert outcomes(p, alert("hung")) == ["duplicate"]
    assert outcomes(p, alert("hung again, differently")) == ["due"]
    clock.now += p.dedup_seconds + 1
    assert outcomes(p, alert("hung again, differently")) == ["due"]


def test_a_flood_of_500_yields_the_limit_and_one_summary_then_the_next_says_how_many_were_held() -> None:
    p, clock = policy()
    sent = []
    for i in range(500):
        clock.now += 0.01
        notice = nt.from_alert(Alert(severity="WARNING", code=f"flood.{i}", message=f"number {i}"), "test")
        sent += [v for v in p.decide(notice) if v.send]
    assert len(sent) == p.limit + 1
    assert [v.outcome for v in sent].count("summary") == 1
    assert "held back" in next(v.notice.text() for v in sent if v.outcome == "summary")
    assert p.counts["rate_limited"] == 500 - p.limit
    clock.now += p.window
    after = p.decide(
        nt.from_alert(Alert(severity="CRITICAL", code="later", message="after the hour"), "test")
    )
    assert [v.outcome for v in after] == ["due"]
    assert f"{500 - p.limit} alert(s) were held back" in after[0].notice.text()


def test_a_state_held_by_the_rate_limit_is_said_once_there_is_room() -> None:
    p, clock = policy()
    for i in range(p.limit):
        p.decide(nt.from_alert(Alert(severity="WARNING", code=f"x.{i}", message="m"), "t"))
    halted = nt.from_risk_state(RiskState(halted=True, halt_reason="loss"))[0]
    assert outcomes(p, halted) == ["summary", "rate_limited"]
    assert outcomes(p, halted) == ["duplicate"]  # still no room: not counted again
    clock.now += p.window
    assert outcomes(p, halted) == ["due"]


def test_a_restart_remembers_what_was_said() -> None:
    p, _ = policy()
    p.remember("halt", "trading", "HALTED", True)
    halted, _breaker = nt.from_risk_state(RiskState(halted=True))
    assert outcomes(p, halted) == ["duplicate"]
    resumed, _ = nt.from_risk_state(RiskState(halted=False))
    assert outcomes(p, resumed) == ["due"]


def healthy_facts(**changes: object) -> DeadmanFacts:
    base: dict[str, object] = {
        "supervisord_up": True,
        "programs": {"gateway_sim": "RUNNING", "bridge": "RUNNING", "executor": "RUNNING"},
        "heartbeat_age": {"bridge": 1.0, "executor": 1.0},
        "budgets": {"bridge": 20.0, "executor": 20.0},
        "bridge_state": "READY",
    }
    base.update(changes)
    return DeadmanFacts(**base)  # type: ignore[arg-type]


def test_dead_man_pings_while_healthy_and_fails_with_the_reason() -> None:
    assert decide(healthy_facts()).healthy
    stalled = decide(healthy_facts(bridge_state="STALLED"))
    assert not stalled.healthy and "STALLED" in stalled.reason
    assert decide(healthy_facts(bridge_state="DISCONNECTED", market_closed=True)).healthy  # a planned pause
    silent = decide(healthy_facts(heartbeat_age={"bridge": 1.0, "executor": 45.0}))
    assert not silent.healthy and "executor" in silent.reason
    assert not decide(healthy_facts(supervisord_up=False)).healthy
    restarting = {"gateway_sim": "RUNNING", "bridge": "RUNNING", "executor": "STARTING"}
    assert decide(healthy_facts(programs=restarting, not_running_for={"executor": 3.0})).healthy
    fatal = decide(healthy_facts(programs=restarting, not_running_for={"executor": GRACE + 1}))
    assert not fatal.healthy and "executor is STARTING" in fatal.reason
    assert fail_url("https://hc-ping.com/abc/") == "https://hc-ping.com/abc/fail"
