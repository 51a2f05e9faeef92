"""The metric mapping: what the monitor knows (StackView, its own counters) -> Prometheus metric families.

Prometheus' conventions: one prefix (`ibstack_`), `_total` counters, base units (`_seconds`, `_bytes`), labels
only over bounded sets (programs, symbols in SYMBOLS, states, sides, sinks named by scheme). Money is in the
account's currency and has no unit suffix. A figure the monitor does not know right now (the executor does not
answer) is left out rather than shown as 0: `absent()` in a rule then says so. Built at scrape time from
plain values, on the monitor's event loop (web.py's /metrics); it must never block, and never asks anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from procs.monitor.view import StackView
from shared.messages import GatewayStateName

P = "ibstack_"
BRIDGE_STATES: tuple[str, ...] = get_args(GatewayStateName)
BREAKER_STATES = ("CLOSED", "OPEN", "HALF_OPEN")


@dataclass
class MonitorFacts:
    """The monitor's own figures: alerts decided, deliveries per sink, dead-man pings."""

    alerts: Counter[str] = field(default_factory=Counter)  # outcome -> count
    sinks: list[dict[str, Any]] = field(
        default_factory=list
    )  # name, delivered, failures, queued, last_success_ns
    deadman: Counter[str] = field(default_factory=Counter)  # ok | fail | error
    deadman_last_ok_ns: int = 0
    msgs_limit: float = 0.0
    status_fresh: bool = False


def _num(value: Any) -> float | None:
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _gauge(name: str, doc: str, value: float | None, unit: str = "") -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(P + name, doc, value=value, unit=unit)


def families(v: StackView, m: MonitorFacts, now: float) -> list[Metric]:
    """Every metric family, from one consistent copy of the view (`now` on the monotonic clock)."""
    out: list[Metric] = []
    out += _programs(v, now)
    out += _bridge(v, m)
    out += _trading(v, m)
    out += _monitor(v, m)
    return out


def _programs(v: StackView, now: float) -> list[Metric]:
    up = GaugeMetricFamily(
        P + "program_up", "1 when supervisord says the program is RUNNING", labels=["program"]
    )
    for name, state in sorted(v.programs.items()):
        up.add_metric([name], 1.0 if state == "RUNNING" else 0.0)
    age = GaugeMetricFamily(
        P + "heartbeat_age_seconds",
        "seconds since the program's last heartbeat was heard",
        labels=["program"],
    )
    lag = GaugeMetricFamily(
        P + "loop_lag_seconds", "the program's event-loop lag at its last beat", labels=["program"]
    )
    for name, (hb, heard) in sorted(v.heartbeats.items()):
        age.add_metric([name], max(0.0, now - heard))
        if "loop_lag_ms" in hb.counters:
            lag.add_metric([name], hb.counters["loop_lag_ms"] / 1000)
    rss = GaugeMetricFamily(P + "resident_memory_bytes", "the program's resident memory", labels=["program"])
    for name, value in sorted(v.rss.items()):
        rss.add_metric([name], float(value))
    sup = GaugeMetricFamily(
        P + "supervisord_up", "1 when supervisord answers", value=1.0 if v.supervisord_up else 0.0
    )
    return [up, age, lag, rss, sup]


def _bridge(v: StackView, m: MonitorFacts) -> list[Metric]:
    out: list[Metric] = []
    seen = v.heartbeats.get("bridge")
    state = GaugeMetricFamily(
        P + "bridge_state", "1 for the bridge's current Gateway-session state", labels=["state"]
    )
    for s in BRIDGE_STATES:
        state.add_metric([s], 1.0 if s == v.bridge_state else 0.0)
    out.append(state)
    if seen is None:
        return out
    hb = seen[0]
    rtt = hb.detail.get("heartbeat_rtt_ms")
    out += _gauge("bridge_heartbeat_rtt_seconds", "round trip of the last reqCurrentTime", _ms(rtt))
    out.append(
        CounterMetricFamily(
            P + "bridge_reconnects",
            "reconnects since the bridge started",
            value=float(hb.detail.get("reconnects") or 0),
        )
    )
    c = hb.counters
    if "outbox_sent" in c:
        out.append(
            CounterMetricFamily(
                P + "gateway_messages_sent", "messages sent to the Gateway", value=c["outbox_sent"]
            )
        )
        out.append(
            GaugeMetricFamily(
                P + "gateway_messages_per_second",
                "messages sent to the Gateway per second, between the bridge's last two heartbeats",
                value=v.bridge_msgs_last_second,
            )
        )
    out += _gauge(
        "gateway_messages_limit_per_second", "BRIDGE_MSGS_PER_SECOND (IB's limit is 50)", m.msgs_limit or None
    )
    for key, name, doc in (
        ("outbox_waits", "gateway_pacing_waits", "times the pacer held messages back"),
        ("history_refused", "history_pacing_refusals", "history requests refused by IB's pacing rules"),
    ):
        if key in c:
            out.append(CounterMetricFamily(P + name, doc, value=c[key]))
    out += _gauge("gateway_outbox_backlog", "messages waiting for pacing room", c.get("outbox_backlog"))
    cw = v.heartbeats.get("watchdog")
    if cw is not None:
        close_wait = GaugeMetricFamily(
            P + "close_wait_sockets", "CLOSE_WAIT sockets on the Gateway port, by side", labels=["side"]
        )
        for side in ("client", "gateway"):
            close_wait.add_metric([side], float(cw[0].detail.get(f"close_wait_{side}") or 0))
        out.append(close_wait)
        handed_off = float(len(cw[0].detail.get("handed_off") or []))
        out += _gauge(
            "watchdog_handed_off_programs",
            "programs the watchdog stopped restarting (rate limit)",
            handed_off,
        )
    return out


def _ms(value: Any) -> float | None:
    return None if value is None else float(value) / 1000


def _trading(v: StackView, m: MonitorFacts) -> list[Metric]:
    out: list[Metric] = [
        CounterMetricFamily(
            P + "orders", "orders seen on the bus (by client order id)", value=float(v.orders)
        ),
        CounterMetricFamily(P + "fills", "executions seen on the bus (by exec id)", value=float(v.fills)),
    ]
    events = CounterMetricFamily(P + "order_events", "order status events on the bus", labels=["status"])
    for status, n in sorted(v.order_events.items()):
        events.add_metric([status], float(n))
    rejects = CounterMetricFamily(P + "order_rejects", "rejected orders by reason", labels=["reason"])
    for reason, n in sorted(v.rejects.items()):
        rejects.add_metric([reason], float(n))
    out += [events, rejects]
    pos = GaugeMetricFamily(P + "position_shares", "shares held, per symbol", labels=["symbol", "book"])
    for (symbol, book), qty in sorted(v.positions.items()):
        pos.add_metric([symbol, book], float(qty))
    out.append(pos)
    acct = GaugeMetricFamily(P + "account_value", "the broker's account values", labels=["tag"])
    for tag, value in sorted(v.account.items()):
        acct.add_metric([tag], value)
    out.append(acct)
    s = v.status
    if not (m.status_fresh and s):
        return out  # the executor does not answer: unknown, not zero
    for key, name, doc in (
        ("daily_pnl", "pnl_today", "today's P&L (realized + unrealized, after commissions)"),
        ("realized_today", "realized_pnl_today", "today's realized P&L"),
        ("unrealized", "unrealized_pnl", "unrealized P&L at the last marks"),
        ("gross_exposure", "gross_exposure", "sum of absolute position values"),
        ("daily_loss_limit", "daily_loss_limit", "DAILY_LOSS_LIMIT"),
        ("positions", "positions", "symbols held"),
        ("working_orders", "working_orders", "orders working at the broker"),
    ):
        out += _gauge(name, doc, _num(s.get(key)))
    out += _gauge("halted", "1 while trading is halted (the kill switch)", 1.0 if s.get("halted") else 0.0)
    mismatched = float(len(s.get("mismatched") or {}))
    out += _gauge("position_mismatches", "symbols whose ledger disagrees with the broker", mismatched)
    breaker = GaugeMetricFamily(
        P + "circuit_breaker_state", "1 for the breaker's current state", labels=["state"]
    )
    for b in BREAKER_STATES:
        breaker.add_metric([b], 1.0 if s.get("circuit_breaker") == b else 0.0)
    out.append(breaker)
    return out


def _monitor(v: StackView, m: MonitorFacts) -> list[Metric]:
    alerts = CounterMetricFamily(P + "alerts", "alerts decided, by outcome", labels=["outcome"])
    for outcome, n in sorted(m.alerts.items()):
        alerts.add_metric([outcome], float(n))
    sent = CounterMetricFamily(P + "alert_deliveries", "alerts delivered, by sink", labels=["sink"])
    failed = CounterMetricFamily(
        P + "alert_delivery_failures", "failed delivery attempts, by sink", labels=["sink"]
    )
    queued = GaugeMetricFamily(P + "alerts_unsent", "alerts waiting for a sink", labels=["sink"])
    last = GaugeMetricFamily(
        P + "alert_last_delivery_timestamp_seconds", "when the sink last took an alert", labels=["sink"]
    )
    for sink in m.sinks:
        sent.add_metric([sink["name"]], float(sink["delivered"]))
        failed.add_metric([sink["name"]], float(sink["failures"]))
        queued.add_metric([sink["name"]], float(sink["queued"]))
        if sink["last_success_ns"]:
            last.add_metric([sink["name"]], sink["last_success_ns"] / 1e9)
    pings = CounterMetricFamily(P + "deadman_pings", "dead-man's switch pings by result", labels=["result"])
    for result, n in sorted(m.deadman.items()):
        pings.add_metric([result], float(n))
    gaps = CounterMetricFamily(
        P + "bus_gaps", "gaps seen in the bus streams the monitor takes", value=float(v.bus_gaps)
    )
    lost = CounterMetricFamily(
        P + "bus_messages_lost", "messages missing in those gaps", value=float(v.bus_lost)
    )
    return [alerts, sent, failed, queued, last, pings, gaps, lost]
