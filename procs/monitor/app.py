"""Wires the monitor inside the service harness: bus listener, supervisord and executor polls, alert sinks,
the dead-man's switch, the web port (dashboard, /events, /metrics), the daily report after the close, and the
`monitor.req` socket (bin/trader alerts, test-alert).

It only listens and reads: it never sends anything to the Gateway or to the bridge (it does not even ask the
bridge: the bridge's heartbeat says enough), and from the executor it asks only the read-only status,
positions and orders, plus a halt when the operator presses the dashboard's button (DASHBOARD_CONTROL=true,
behind DASHBOARD_TOKEN). It reads the ledger read-only. Trading never waits for it: if it is slow or down,
no other program notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec
import psutil
from loguru import logger

from procs.monitor import daybook, web
from procs.monitor import notices as nt
from procs.monitor.alerting import Alerting
from procs.monitor.board import Board, fill_row, snapshot
from procs.monitor.closing import DayClose
from procs.monitor.deadman import DeadmanFacts, decide
from procs.monitor.metrics import MonitorFacts, families
from procs.monitor.pinger import ping_forever
from procs.monitor.policy import AlertPolicy
from procs.monitor.sinks import FAIL_WARN_AFTER, close_sinks, parse_sinks
from procs.monitor.view import StackView
from procs.watchdog.act import Supervisor
from shared.bus import (
    PUB_SOCKETS,
    BusSubscriber,
    RequestTimeout,
    pub_endpoint,
    req_endpoint,
)
from shared.log import log_every
from shared.messages import (
    AccountValue,
    Alert,
    AlertsRequest,
    Fill,
    GatewayStatus,
    HaltRequest,
    HealthRequest,
    Heartbeat,
    OrderEvent,
    OrdersRequest,
    Position,
    PositionsRequest,
    RiskState,
    SendTestAlertRequest,
    StatusRequest,
)
from shared.service import Service
from shared.supervisor import supervisor_socket

TOPICS = ("heartbeat.", "alert", "gateway", "order.", "fill", "position", "account", "risk")
PROGRAM_GRACE = 15.0  # seconds out of RUNNING before a program's state is an alert (a restart is not)
METRICS_RETRY = 30.0


class Monitor:
    def __init__(self, svc: Service) -> None:
        self.svc = svc
        s = svc.settings
        web.check_bind(s)  # ConfigError: exit 78 naming DASHBOARD_TOKEN
        self.view = StackView(started_mono=time.monotonic())
        self.facts = MonitorFacts(msgs_limit=s.bridge_msgs_per_second)
        self.alerting = Alerting(
            AlertPolicy(level=s.alert_level, clock=time.monotonic),
            s.log_dir / "alerts.jsonl",
            parse_sinks(s.alert_urls.get_secret_value()),  # ConfigError: exit 78, the URL masked
        )
        self.poll_seconds = min(5.0, max(1.0, 2 * s.heartbeat_seconds))
        self.executor = svc.bus.client(req_endpoint(s, "executor"), timeout=1.0, retries=0)
        # the dashboard's halt on a socket of its own: a poll may be waiting on `executor` (one request at a time)
        self.halter = svc.bus.client(req_endpoint(s, "executor"), timeout=3.0, retries=0)
        self.supervisor = Supervisor(supervisor_socket(s), timeout=2.0)
        self.ever_running: set[str] = set()
        self.metrics_at = ""
        self.deadman_state = "off" if not s.heartbeat_url.get_secret_value() else "not yet"
        self.board = Board()
        self.hub = web.Hub(self.dashboard_state, lambda: self.board.version)
        self.poke = asyncio.Event()  # a fill or an order event: poll positions and orders now
        self.closing = DayClose(s, self.alerting)

    # ---------------------------------------------------------------- the bus

    def on_message(self, topic: str, msg: Any) -> None:
        now = time.monotonic()
        v, notify = self.view, self.alerting.notify
        b = self.board
        if isinstance(msg, Heartbeat):
            before = v.heartbeats.get(msg.program)
            bridge_before = v.bridge_state
            v.heard(msg, now)
            if before is None or before[0].state != msg.state or v.bridge_state != bridge_before:
                b.changed()
        elif isinstance(msg, Alert):
            notify(nt.from_alert(msg, msg.source))
            b.changed()
        elif isinstance(msg, GatewayStatus):
            v.bridge_state = msg.state
            b.gateway = msg
            b.changed()
            notice = nt.from_gateway_status(msg)
            if notice is not None:
                notify(notice)
        elif isinstance(msg, OrderEvent):
            v.order(msg)
            b.changed()
            self.poke.set()
        elif isinstance(msg, Fill):
            v.fill(msg)
            b.add_fill(fill_row(msg))
            self.poke.set()
        elif isinstance(msg, Position):
            v.position(msg)
            b.changed()
        elif isinstance(msg, AccountValue):
            v.account_value(msg)
        elif isinstance(msg, RiskState):
            for notice in nt.from_risk_state(msg):
                notify(notice)
            b.changed()

    async def listen(self, sub: BusSubscriber) -> None:
        while not self.svc.stop.is_set():
            got = await sub.recv(timeout=0.5)
            self.view.bus_gaps, self.view.bus_lost = sub.stats.gaps, sub.stats.lost
            if got is None:
                continue
            try:
                self.on_message(got.topic, got.msg)
            except Exception as exc:  # one odd message costs a log line, never the monitor
                log_every("monitor.message", 60.0, "ERROR", f"could not take {got.topic}: {exc!r}")

    # ---------------------------------------------------------------- polls (read-only)

    async def poll_forever(self) -> None:
        while not self.svc.stop.is_set():
            try:
                await self.poll_once()
            except Exception as exc:
                log_every("monitor.poll", 60.0, "ERROR", f"poll failed: {exc!r}")
            self.update_heartbeat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._next_poll(), self.poll_seconds)
            self.poke.clear()

    async def _next_poll(self) -> None:
        stop = asyncio.ensure_future(self.svc.stop.wait())
        poked = asyncio.ensure_future(self.poke.wait())
        try:
            await asyncio.wait({stop, poked}, return_when=asyncio.FIRST_COMPLETED)
            if poked.done() and not stop.done():
                await asyncio.sleep(0.1)  # the executor books the fill it was told of: ask right after
        finally:
            stop.cancel()
            poked.cancel()

    async def poll_once(self) -> None:
        table = await asyncio.to_thread(self.supervisor.table)
        now = time.monotonic()
        v = self.view
        if (table is not None) != v.supervisord_up or table is None:
            self.alerting.notify(nt.supervisord_notice(table is not None))
        v.supervisord_up = table is not None
        if table is not None:
            v.programs = {p.name: p.state for p in table.programs}
            v.program_pids = {p.name: p.pid for p in table.programs if p.pid}
            v.rss = await asyncio.to_thread(_rss, v.program_pids)
            for p in table.programs:
                self._program_state(p.name, p.state, now)
        try:
            reply = await self.executor.request(StatusRequest())
        except Exception:  # RequestTimeout: the executor is down or busy; its figures go unknown
            reply = None
        if reply is not None and reply.ok and isinstance(reply.result, dict):
            v.status, v.status_at = reply.result, now
            for notice in nt.from_status(reply.result):
                self.alerting.notify(notice)
            await self.poll_book()
        self.facts.status_fresh = now - v.status_at < 3 * self.poll_seconds + 1
        if self.facts.status_fresh:
            self.closing.on_status(v.status, v, self.board)

    async def poll_book(self) -> None:
        """The dashboard's positions, working orders and today's fills (read-only asks, the ledger read-only)."""
        b = self.board
        for request, attr in ((PositionsRequest(), "positions"), (OrdersRequest(), "orders")):
            try:
                reply = await self.executor.request(request)
            except Exception:
                continue
            if reply.ok and isinstance(reply.result, list) and reply.result != getattr(b, attr):
                setattr(b, attr, reply.result)
                b.changed()
        day = str(self.view.status.get("trading_day") or "")
        if day:
            b.new_day(day)
            path = daybook.ledger_path(self.svc.settings.data_dir)
            for row in await asyncio.to_thread(daybook.fills_on, path, day):
                b.add_fill(row)

    def _program_state(self, name: str, state: str, now: float) -> None:
        v = self.view
        if state == "RUNNING":
            self.ever_running.add(name)
            v.not_running_since.pop(name, None)
            self.alerting.notify(nt.program_notice(name, state))
            return
        since = v.not_running_since.setdefault(name, now)
        if now - since >= PROGRAM_GRACE and (state != "STOPPED" or name in self.ever_running):
            self.alerting.notify(nt.program_notice(name, state))

    # ---------------------------------------------------------------- dead-man's switch

    def deadman_facts(self) -> DeadmanFacts:
        v, s, now = self.view, self.svc.settings, time.monotonic()
        expected = {n: st for n, st in v.programs.items() if st != "STOPPED"}
        if s.gateway == "ib":
            expected.pop("gateway_sim", None)  # with a real Gateway the simulator exits at once, on purpose
        ages: dict[str, float | None] = {self.svc.program: 0.0}  # this code running is the monitor's beat
        for name in expected:
            if name == self.svc.program:
                continue
            age = v.heartbeat_age(name, now)
            ages[name] = (
                age if age is not None else now - v.started_mono
            )  # not heard since the monitor started
        return DeadmanFacts(
            supervisord_up=v.supervisord_up,
            programs=expected,
            not_running_for={n: now - t for n, t in v.not_running_since.items()},
            heartbeat_age=ages,
            budgets={n: s.heartbeat_budget_for(n) for n in expected},
            bridge_state=v.bridge_state,
            market_closed=v.status.get("market_session") == "closed" and self.facts.status_fresh,
        )

    def deadman_verdict(self) -> tuple[bool, str]:
        verdict = decide(self.deadman_facts())
        return verdict.healthy, verdict.reason

    # ---------------------------------------------------------------- requests, heartbeat, metrics

    async def handle(self, req: Any) -> Any:
        if isinstance(req, AlertsRequest):
            return {
                "alerts": self.alerting.recent(req.limit),
                "sinks": self.alerting.sink_states(),
                "level": self.svc.settings.alert_level,
            }
        if isinstance(req, SendTestAlertRequest):
            return await self.alerting.test_alert(req.message[:500])
        if isinstance(req, HealthRequest):
            return {"state": self.svc.state, **self.svc.detail}
        raise ValueError(f"unknown request {type(req).__name__}")

    def update_heartbeat(self) -> None:
        sinks = self.alerting.sink_states()
        failing = [s["name"] for s in sinks if s["failing_in_a_row"] >= FAIL_WARN_AFTER]
        self.facts.alerts = self.alerting.policy.counts
        self.facts.sinks = sinks
        self.svc.detail.update(
            sinks=[s["name"] for s in sinks],
            sinks_failing=failing,
            unsent=sum(s["queued"] for s in sinks),
            last_delivery_ns=self.alerting.last_delivery_ns(),
            alerts=dict(self.alerting.policy.counts),
            metrics=self.metrics_at,
            deadman=self.deadman_state,
            deadman_last_ok_ns=self.facts.deadman_last_ok_ns,
        )
        self.svc.set_state("DEGRADED" if failing or self.metrics_at.startswith("not served") else "RUNNING")

    def metrics(self) -> list[Any]:
        return families(self.view, self.facts, time.monotonic())

    def dashboard_state(self) -> dict[str, Any]:
        return snapshot(
            self.svc.settings,
            self.view,
            self.board,
            self.alerting.recent(10),
            self.facts.status_fresh,
            time.monotonic(),
        )

    async def halt(self, reason: str) -> dict[str, Any]:
        """The dashboard's halt button: the same request as `bin/trader halt`, on the executor's socket."""
        try:
            reply = await self.halter.request(HaltRequest(reason=reason))
        except RequestTimeout:
            logger.warning("halt requested from the dashboard: the executor did not answer")
            return {"ok": False, "error": "the executor did not answer", "halted": False}
        logger.warning("halt requested from the dashboard: {}", "done" if reply.ok else reply.error)
        result = reply.result if isinstance(reply.result, dict) else {}
        return {"ok": reply.ok, "error": reply.error, "halted": bool(result.get("halted"))}

    async def serve_web(self) -> None:
        """The dashboard and /metrics on MONITOR_BIND:MONITOR_PORT; a taken port is retried, never fatal."""
        s, stop = self.svc.settings, self.svc.stop
        app = web.build_app(s, self.hub, stop, self.metrics, self.halt)
        while not stop.is_set():
            try:
                sock = web.listen(s)
            except OSError as exc:
                self.metrics_at = f"not served: {s.monitor_bind}:{s.monitor_port}: {exc.strerror}"
                log_every(
                    "monitor.metrics",
                    3600.0,
                    "WARNING",
                    f"dashboard and /metrics {self.metrics_at}; retrying",
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), METRICS_RETRY)
                continue
            self.metrics_at = f"http://{s.monitor_bind}:{s.monitor_port}/metrics"
            logger.info(
                "dashboard on http://{}:{}/ and metrics on {}",
                s.monitor_bind,
                s.monitor_port,
                self.metrics_at,
            )
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.hub.pump(stop))
                tasks.create_task(web.serve(app, sock, stop))
            return


def _rss(pids: dict[str, int]) -> dict[str, int]:
    out = {}
    for name, pid in pids.items():
        with contextlib.suppress(psutil.Error):
            out[name] = psutil.Process(pid).memory_info().rss
    return out


async def main(svc: Service) -> None:
    mon = Monitor(svc)
    settings = svc.settings
    mon.alerting.recover()
    endpoints = [pub_endpoint(settings, p) for p in PUB_SOCKETS if p != "monitor"]
    sub = svc.bus.subscriber(endpoints, TOPICS)
    server = svc.bus.server(req_endpoint(settings, "monitor"), "monitor", mon.handle)
    mon.update_heartbeat()
    svc.set_state("RUNNING")
    url = settings.heartbeat_url.get_secret_value()
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(mon.listen(sub))
            tasks.create_task(mon.poll_forever())
            tasks.create_task(server.serve(svc.stop))
            tasks.create_task(mon.serve_web())
            for job in mon.alerting.tasks(svc.stop):
                tasks.create_task(job)
            if url:
                tasks.create_task(ping_forever(mon, url, settings.heartbeat_url_seconds, svc.stop))
    finally:
        svc.stop.set()
        server.close()
        sub.close()
        mon.executor.close()
        close_sinks(mon.alerting.sinks)


def decode_detail(raw: bytes) -> dict[str, Any]:
    """The monitor's heartbeat detail from its heartbeat file (bin/gateway-health)."""
    doc = msgspec.json.decode(raw)
    return dict(doc.get("detail") or {}) if isinstance(doc, dict) else {}
