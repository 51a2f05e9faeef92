"""The monitor in a real supervised stack (simulator, bridge, executor, watchdog, monitor) with real receivers:
a json:// webhook and dead-man URL on a local HTTP server, mailto:// on a local SMTP server (aiosmtpd).

One stack for the module (its checks run in order; the flood is last, since after it every alert is held).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.bus import Publisher, new_context, pub_endpoint, req_endpoint, request_once
from shared.messages import Alert, CancelOrder, PlaceOrder
from tests.procs.monitor.receivers import HookServer, _Inbox, hook_server, smtp_server
from tests.support.sim import free_port
from tests.support.stack import REPO, Stack, running_stack, wait_for

PROGRAMS = ("gateway_sim", "bridge", "executor", "watchdog", "monitor")


@dataclass
class Scene:
    stack: Stack
    hook: HookServer
    inbox: _Inbox
    metrics_port: int

    def run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "bin" / tool), *args],
            env=self.stack.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def titles(self) -> list[str]:
        return [str(h.json().get("title", "")) for h in self.hook.at("/hook")]

    def metrics(self) -> dict[str, float]:
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        )
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
        return out

    def journal(self) -> list[dict[str, Any]]:
        path = self.stack.settings.log_dir / "alerts.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    with hook_server() as hook, smtp_server() as (smtp_port, inbox):
        port = free_port()
        env = {
            "SYMBOLS": "AAPL",
            "ALERT_URLS": f"{hook.json_url()} "
            f"mailto://example.com:{smtp_port}?smtp=127.0.0.1&from=stack@example.com&to=ops@example.com",
            "HEARTBEAT_URL": hook.url(f"/ping/{uuid.uuid4()}"),
            "HEARTBEAT_URL_SECONDS": "5",
            "MONITOR_PORT": str(port),
        }
        with running_stack(env, programs=PROGRAMS, timeout=40) as stack:
            scene = Scene(stack, hook, inbox, port)
            wait_for("the executor's status in /metrics", lambda: "ibstack_halted" in scene.metrics(), 30)
            yield scene


def test_metrics_parse_and_match_trader_status_and_the_dead_man_pings_while_healthy(scene: Scene) -> None:
    wait_for("a healthy ping", lambda: [h for h in scene.hook.at("/ping") if h.method == "GET"], 20)
    status = json.loads(scene.run("trader", "--json", "status").stdout)
    m = scene.metrics()
    assert m["ibstack_halted"] == (1.0 if status["halted"] else 0.0)
    for key, metric in (
        ("daily_pnl", "ibstack_pnl_today"),
        ("unrealized", "ibstack_unrealized_pnl"),
        ("gross_exposure", "ibstack_gross_exposure"),
        ("positions", "ibstack_positions"),
        ("working_orders", "ibstack_working_orders"),
    ):
        assert Decimal(str(m[metric])) == Decimal(str(status[key])), key
    assert m[f"ibstack_circuit_breaker_state{{state={status['circuit_breaker']}}}"] == 1.0
    assert m["ibstack_bridge_state{state=READY}"] == 1.0
    assert m["ibstack_program_up{program=monitor}"] == 1.0
    assert m["ibstack_resident_memory_bytes{program=bridge}"] > 1e6
    assert m["ibstack_heartbeat_age_seconds{program=executor}"] < 10
    assert m["ibstack_deadman_pings_total{result=ok}"] >= 1
    assert not [h for h in scene.hook.at("/ping") if h.path.endswith("/fail")]


def test_a_halt_is_told_within_seconds_by_webhook_and_mail_and_its_resume_too(scene: Scene) -> None:
    started = time.monotonic()
    assert scene.run("trader", "halt", "monitor", "test").returncode == 0
    wait_for("the halt alert", lambda: any("halted" in t.lower() for t in scene.titles()), 10)
    assert time.monotonic() - started < 10
    halt = next(h.json() for h in scene.hook.at("/hook") if "halted" in str(h.json()["title"]).lower())
    assert "monitor test" in halt["message"] and "bin/trader resume" in halt["message"]
    wait_for("the halt by mail", lambda: any("monitor test" in m["data"] for m in scene.inbox.messages), 10)
    assert scene.run("trader", "resume").returncode == 0
    wait_for("the resume", lambda: any("resumed" in t.lower() for t in scene.titles()), 10)
    assert sum("halted" in t.lower() for t in scene.titles()) == 1  # the Alert and RiskState: said once


def test_a_stalled_bridge_is_told_the_dead_man_fails_and_the_recovery_follows(scene: Scene) -> None:
    port = str(scene.stack.settings.ib_port)
    assert scene.run("gateway-sim-ctl", "--port", port, "silent", "on").returncode == 0
    try:
        wait_for("the STALLED alert", lambda: any("STALLED" in t for t in scene.titles()), 30)
        fails = wait_for(
            "a /fail ping", lambda: [h for h in scene.hook.at("/ping") if h.path.endswith("/fail")], 20
        )
        assert b"STALLED" in fails[0].body
    finally:
        scene.run("gateway-sim-ctl", "--port", port, "silent", "off")
    wait_for("the recovery", lambda: any("READY" in t for t in scene.titles()), 40)
    n = len(scene.hook.at("/ping"))
    wait_for(
        "healthy pings again",
        lambda: scene.hook.at("/ping")[n:] and scene.hook.at("/ping")[-1].method == "GET",
        20,
    )


def test_test_alert_goes_through_every_sink_and_alerts_lists_what_happened(scene: Scene) -> None:
    sent = scene.run("trader", "test-alert", "hello", "from", "the", "test")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "json#1: ok" in sent.stdout and "mailto#2: ok" in sent.stdout
    assert any("hello from the test" in str(h.json()["message"]) for h in scene.hook.at("/hook"))
    listed = scene.run("trader", "alerts", "--limit", "50")
    assert listed.returncode == 0 and "Test alert" in listed.stdout and "json#1" in listed.stdout
    assert "example.com" not in listed.stdout + sent.stdout  # no URL, ever


def test_a_hanging_sink_never_delays_an_order(scene: Scene) -> None:
    """The webhook hangs and the monitor itself is frozen (SIGSTOP): an order still goes through the bridge."""
    scene.hook.mode = "hang"
    pid = int(scene.stack.info("monitor")["pid"])
    bridge = req_endpoint(scene.stack.settings, "bridge")
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        ack = request_once(
            bridge,
            PlaceOrder(
                client_order_id=f"mon-{uuid.uuid4().hex[:8]}",
                symbol="AAPL",
                side="BUY",
                quantity=Decimal(1),
                limit_price=Decimal("1.00"),  # far from the market: it never fills
            ),
            timeout=10,
        )
        took = time.monotonic() - started
        assert ack.ok, ack.error
        assert took < 3.0, took  # generous: the order path does not wait for the monitor at all
        request_once(bridge, CancelOrder(client_order_id=ack.result["client_order_id"]), timeout=10)
    finally:
        os.kill(pid, signal.SIGCONT)
        scene.hook.mode = "ok"
        scene.hook.released.set()
        scene.hook.released.clear()


def test_a_monitor_killed_mid_send_loses_no_alert_that_was_due(scene: Scene) -> None:
    scene.hook.mode = "hang"
    try:
        assert scene.run("trader", "halt", "killed", "mid", "send").returncode == 0
        wait_for(
            "the send under way",
            lambda: any(b"killed mid send" in h.body for h in scene.hook.at("/hook")),
            15,
        )
        old = int(scene.stack.info("monitor")["pid"])
        os.kill(old, signal.SIGKILL)
    finally:
        scene.hook.mode = "ok"
        scene.hook.released.set()
    wait_for(
        "the monitor back",
        lambda: (i := scene.stack.info("monitor"))["statename"] == "RUNNING" and i["pid"] != old,
        30,
    )
    wait_for(
        "the alert sent again after the restart",
        lambda: sum(b"killed mid send" in h.body for h in scene.hook.at("/hook")) >= 2,
        30,
    )
    scene.hook.released.clear()
    assert scene.run("trader", "resume").returncode == 0


def test_a_flood_of_500_alerts_yields_at_most_the_limit_and_one_summary(scene: Scene) -> None:
    """Last: after it every alert in this stack is held back for the hour."""
    before = [r for r in scene.journal() if r.get("outcome") in ("due", "summary")]
    ctx = new_context()
    # the strategy is not running in this stack: its bus socket is free for a stand-in that floods alerts
    pub = Publisher(ctx, pub_endpoint(scene.stack.settings, "strategy"), "strategy")
    try:
        time.sleep(1.5)  # the monitor's subscription reconnects to the new socket
        for i in range(500):
            pub.publish("alert", Alert(severity="WARNING", code=f"flood.{i}", message=f"flood number {i}"))
        wait_for(
            "every flood alert decided",
            lambda: sum(1 for r in scene.journal() if str(r.get("kind", "")).startswith("flood.")) >= 500,
            20,
        )
    finally:
        pub.close()
        ctx.destroy(linger=0)
    after = [r for r in scene.journal() if r.get("outcome") in ("due", "summary")]
    new = after[len(before) :]
    assert [r["outcome"] for r in new].count("summary") == 1
    assert len(new) <= 30 + 1
    wait_for("the summary delivered", lambda: any("rate limit" in t.lower() for t in scene.titles()), 20)
