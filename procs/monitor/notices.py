"""What on the bus (and in supervisord's table) needs a human: bus messages in, Notices out. Pure.

A Notice names a kind and a subject (what the dedup and the recovery pair on) and the state it reports. A
state notice (the bridge's state, the halt, the circuit breaker, a program's state) is sticky: it is said
once per change of state; its recovery is sent only when the alert it ends was sent. Every other Alert on
the bus is an event, said again only when it differs or after the dedup window. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shared.messages import Alert, GatewayStatus, RiskState

Severity = Literal["INFO", "WARNING", "CRITICAL"]
SEVERITY_RANK: dict[str, int] = {"INFO": 0, "WARNING": 1, "CRITICAL": 2}

TWO_FA_REMEDY = (
    "the Gateway needs a human: open IB Gateway/TWS on its machine, log in (2FA on your phone), then check "
    "`bin/gateway-health`"
)
# the bridge's own alert codes, paired with its GatewayStatus so one state is said once
_GATEWAY_CODES: dict[str, str] = {
    "gateway.stalled": "STALLED",
    "gateway.waiting_for_human": "WAITING_FOR_HUMAN",
    "gateway.recovered": "READY",
}
_GATEWAY_ALARM: dict[str, Severity] = {"STALLED": "WARNING", "WAITING_FOR_HUMAN": "CRITICAL"}


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str
    subject: str
    state: str
    severity: Severity
    title: str
    body: str = ""
    remedy: str = ""
    recovery: bool = False  # ends an episode of (kind, subject): sent only if its alert was
    sticky: bool = True  # a state: repeated only when it changes (events: after the dedup window)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.subject)

    def text(self) -> str:
        """The message body as sent: what happened, then what to do."""
        parts = [self.body or self.title]
        if self.remedy:
            parts.append(f"What to do: {self.remedy}")
        return "\n".join(parts)


def from_alert(alert: Alert, source: str) -> Notice:
    """Every Alert on the bus; the bridge's, the halt's and the watchdog's CLOSE_WAIT pair with their states."""
    code = alert.code
    if code in _GATEWAY_CODES:
        state = _GATEWAY_CODES[code]
        return _gateway(state, alert.message, alert.remedy)
    if code.startswith("halt."):
        return Notice(
            "halt",
            "trading",
            "HALTED",
            "CRITICAL",
            "Trading halted",
            alert.message,
            alert.remedy,
        )
    if code == "watchdog.gateway-close-wait":
        gone = alert.severity == "INFO"
        return Notice(
            "close_wait",
            "gateway",
            "GONE" if gone else "PRESENT",
            alert.severity,
            "Gateway-side CLOSE_WAIT gone" if gone else "The Gateway holds dead API sockets (CLOSE_WAIT)",
            alert.message,
            alert.remedy,
            recovery=gone,
        )
    subject = _subject(alert.evidence) or source
    return Notice(
        code,
        subject,
        alert.message,
        alert.severity,
        f"{alert.severity}: {code} ({subject})",
        alert.message,
        alert.remedy,
        sticky=False,
    )


def _subject(evidence: dict[str, Any]) -> str:
    for key in ("target", "program", "symbol"):
        value = evidence.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _gateway(state: str, reason: str, remedy: str) -> Notice:
    if state == "READY":
        return Notice(
            "gateway", "bridge", "READY", "INFO", "Gateway session up again (READY)", reason, recovery=True
        )
    if state == "WAITING_FOR_HUMAN":
        remedy = remedy or TWO_FA_REMEDY
    return Notice(
        "gateway",
        "bridge",
        state,
        _GATEWAY_ALARM[state],
        f"Gateway session {state}",
        reason or f"the bridge says {state}",
        remedy or "wait for the bridge to reconnect; read var/log/bridge.log",
    )


def from_gateway_status(status: GatewayStatus) -> Notice | None:
    """STALLED and WAITING_FOR_HUMAN need a human; READY ends them. Other states pass (the bridge retries)."""
    if status.state in _GATEWAY_ALARM or status.state == "READY":
        return _gateway(status.state, status.reason, status.remedy)
    return None


def from_risk_state(risk: RiskState) -> list[Notice]:
    """The kill switch and the circuit breaker, each with its recovery."""
    halt = (
        Notice(
            "halt",
            "trading",
            "HALTED",
            "CRITICAL",
            "Trading halted",
            f"trading halted: {risk.halt_reason or 'no reason given'}",
            "look at `bin/trader status`, then `bin/trader resume` when it is safe",
        )
        if risk.halted
        else Notice("halt", "trading", "TRADING", "INFO", "Trading resumed (halt lifted)", recovery=True)
    )
    breaker = (
        Notice(
            "circuit_breaker",
            "executor",
            "OPEN",
            "WARNING",
            "Circuit breaker open",
            "repeated rejects or send errors: new orders are refused for a cool-down",
            "read var/log/executor.log and `bin/trader status` (last rejection)",
        )
        if risk.circuit_open
        else Notice("circuit_breaker", "executor", "CLOSED", "INFO", "Circuit breaker closed", recovery=True)
    )
    return [halt, breaker]


def from_status(status: dict[str, Any]) -> list[Notice]:
    """The executor's status answer: the halt and the breaker as bin/trader status shows them."""
    halted = bool(status.get("halted"))
    breaker = str(status.get("circuit_breaker", "CLOSED"))
    return from_risk_state(
        RiskState(
            halted=halted, halt_reason=str(status.get("halt_reason", "")), circuit_open=breaker == "OPEN"
        )
    )


def program_notice(name: str, state: str) -> Notice:
    """A program supervisord says is not RUNNING (after the grace), or RUNNING again."""
    if state == "RUNNING":
        return Notice("program", name, "RUNNING", "INFO", f"{name} is RUNNING again", recovery=True)
    severity: Severity = "CRITICAL" if state in ("FATAL", "BACKOFF", "EXITED") else "WARNING"
    return Notice(
        "program",
        name,
        state,
        severity,
        f"{name} is {state}",
        f"supervisord says {name} is {state}",
        f"read var/log/{name}.log, fix the cause, then `supervisorctl start {name}`",
    )


def supervisord_notice(up: bool) -> Notice:
    if up:
        return Notice("supervisord", "stack", "UP", "INFO", "supervisord answers again", recovery=True)
    return Notice(
        "supervisord",
        "stack",
        "DOWN",
        "CRITICAL",
        "supervisord is not answering",
        "nothing can be restarted while supervisord is down",
        "`bin/stack start`, then read var/log/supervisord.log",
    )
