"""What the dashboard shows, as one plain JSON-able map: built from the monitor's StackView, the executor's
read-only answers (status, positions, orders), today's fills and the intraday equity tape.

Pure and bounded: fills, orders and equity points are capped; nothing here does I/O, asks anything, or
holds a secret (the account is masked, tokens never enter). The page renders whatever keys it finds, so
a new field (a position's protective `stops`, when the executor gives one) shows up without a change here.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from shared.config import Settings
from shared.messages import Fill, GatewayStatus
from shared.programs import SILENT_PROGRAMS

MAX_FILLS = 500  # today's fills shown (the newest)
MAX_POINTS = 2000  # equity points kept for the intraday curve (older ones thinned)
# what to do about a bridge state when the bridge itself gave no remedy
REMEDIES = {
    "READY": "",
    "CONNECTING": "wait: the bridge is connecting to the Gateway",
    "STALLED": "the Gateway stopped answering: the bridge reconnects by itself; see `bin/gateway-health`",
    "WAITING_FOR_HUMAN": "log in to IB Gateway/TWS (2FA), then check `bin/gateway-health`",
    "DISCONNECTED": "the bridge reconnects by itself; see `bin/gateway-health` and var/log/bridge.log",
}


def fill_row(f: Fill) -> dict[str, Any]:
    return {
        "exec_id": f.exec_id,
        "client_order_id": f.client_order_id,
        "symbol": f.symbol,
        "side": f.side,
        "quantity": _plain(str(f.quantity)),
        "price": str(f.price),
        "commission": "" if f.commission is None else str(f.commission),
        "time_ns": f.exec_ns or f.ts_ns,
    }


def _plain(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass
class EquityTape:
    """Intraday equity: (time ns, P&L today, the broker's NetLiquidation) per sample, one trading day."""

    day: str = ""
    points: deque[tuple[int, float, float | None]] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))

    def add(self, day: str, t_ns: int, pnl: float, net_liq: float | None) -> None:
        if day != self.day:
            self.day = day
            self.points.clear()
        if self.points and self.points[-1][1:] == (pnl, net_liq) and t_ns - self.points[-1][0] < 60e9:
            return  # flat: a point a minute is enough
        self.points.append((t_ns, pnl, net_liq))


@dataclass
class Board:
    """The dashboard-only state the monitor keeps beside its StackView."""

    gateway: GatewayStatus | None = None
    fills: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)  # exec_id -> row, today
    fills_day: str = ""
    positions: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    equity: EquityTape = field(default_factory=EquityTape)
    version: int = 0  # bumped on every change the page should see at once

    def changed(self) -> None:
        self.version += 1

    def add_fill(self, row: dict[str, Any]) -> None:
        if row["exec_id"] in self.fills:
            old = self.fills[row["exec_id"]]
            if row.get("commission") and not old.get("commission"):
                old["commission"] = row["commission"]
            return
        self.fills[row["exec_id"]] = row
        while len(self.fills) > MAX_FILLS:
            self.fills.popitem(last=False)
        self.changed()

    def new_day(self, day: str) -> None:
        if day and day != self.fills_day:
            self.fills_day = day
            self.fills.clear()


def identity(s: Settings) -> dict[str, Any]:
    return {
        "mode": s.trading_mode,
        "account": s.masked_account,
        "gateway": "simulator" if s.gateway == "sim" else "real Gateway",
        "endpoint": f"{s.ib_host}:{s.ib_port}",
        "read_only": not s.dashboard_control,
        "api_read_only": s.ib_readonly,
        "execution": s.execution,
    }


def heartbeat_note(program: str) -> str:
    """Why a program's heartbeat is never heard here, when that is by design (else "": never heard is news)."""
    if program in SILENT_PROGRAMS:
        return "sends none"  # the simulator: a Gateway stand-in, supervised but silent on the bus
    if program == "monitor":
        return "this page"  # the monitor does not subscribe to its own stream: serving this page is its heartbeat
    return ""


def snapshot(
    s: Settings,
    v: Any,  # StackView (typed loosely: board must not import the app's view to stay pure and small)
    board: Board,
    alerts: list[dict[str, Any]],
    status_fresh: bool,
    now_mono: float,
) -> dict[str, Any]:
    """The whole page's data at this instant."""
    st = v.status if status_fresh else {}
    g = board.gateway
    state = v.bridge_state or (g.state if g else "") or "UNKNOWN"
    same = g is not None and g.state == state
    reason = (g.reason if same and g else "") or str(st.get("gateway_reason") or "")
    remedy = (g.remedy if same and g else "") or REMEDIES.get(state, "see `bin/gateway-health`")
    programs = []
    for name in sorted(set(v.programs) | set(v.heartbeats)):
        seen = v.heartbeats.get(name)
        programs.append(
            {
                "name": name,
                "state": v.programs.get(name, "?"),
                "reported": seen[0].state if seen else "",
                "heartbeat_age_s": None if seen is None else round(max(0.0, now_mono - seen[1]), 1),
                "heartbeat_note": heartbeat_note(name) if seen is None else "",
            }
        )
    return {
        "at_ns": time.time_ns(),
        "identity": identity(s),
        "bridge": {"state": state, "reason": reason, "remedy": remedy},
        "supervisord_up": v.supervisord_up,
        "programs": programs,
        "executor_answers": bool(st),
        "market": {
            "session": st.get("market_session", "unknown"),
            "time": st.get("market_time", ""),
            "hours": st.get("market_hours", ""),
            "orders_gate": st.get("orders_gate", ""),
        },
        "risk": {
            key: st.get(key)
            for key in (
                "halted",
                "halt_reason",
                "halt_source",
                "halted_since",
                "circuit_breaker",
                "daily_pnl",
                "daily_loss_limit",
                "realized_today",
                "commissions_today",
                "unrealized",
                "gross_exposure",
                "trading_day",
                "mismatched",
                "last_rejection",
            )
        },
        "account": dict(v.account),
        "positions": board.positions,
        "orders": [o for o in board.orders if o.get("status") not in ("FILLED", "CANCELLED", "REJECTED")],
        "fills": list(reversed(board.fills.values())),
        "alerts": list(reversed(alerts)),
        "equity": {"day": board.equity.day, "points": list(board.equity.points)},
        "control": s.dashboard_control,
    }
