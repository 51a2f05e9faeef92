"""The bridge's view of the Gateway: separate conditions (socket phase, IB link, data farms, heartbeat,
identity, sync) folded into one state with the reason and the human's remedy; error codes handled by class.

Data farms count by kind (farms.py): a market-data farm the stack uses down is DEGRADED with orders allowed
reduce-only (`reduce_only`: the API gate lets through only orders that reduce the Gateway's position, and the
executor reads DEGRADED + orders_allowed the same way); a historical-data farm down stays READY and only history
waits; a farm the stack does not use changes nothing.

Pure: codes and facts in, a Status and a list of Actions out. It must never treat a data-farm flap or a 1100 as
a dead socket: only the socket's real close leads to a reconnect (that is the session adapter's business).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from procs.bridge.farms import describe, farm_counts, farm_kind, farm_of
from shared.config import PAPER_ACCOUNT_PREFIXES, mask_account
from shared.messages import GatewayStateName

STALLED_REMEDY = "Gateway API not answering: restart the Gateway and log in with 2FA"
LINK_REMEDY = "usually clears by itself within minutes (IB's nightly reset); if it lasts, check the Gateway machine's network"
FARM_REMEDY = (
    "IB data-farm maintenance usually clears by itself; market data is re-requested when the farm is OK"
)


class Phase(Enum):
    """Where the socket and the API session are."""

    CONNECTING = "CONNECTING"
    SYNCING = "SYNCING"
    UP = "UP"
    DISCONNECTED = "DISCONNECTED"
    WAITING_FOR_HUMAN = "WAITING_FOR_HUMAN"
    STOPPED = "STOPPED"


class ErrorClass(Enum):
    LINK_LOST = "link_lost"  # 1100, 2110
    RESTORED_DATA_LOST = "restored_data_lost"  # 1101: every subscription is gone
    RESTORED = "restored"  # 1102
    FARM_BROKEN = "farm_broken"  # 2103 (market data), 2105 (historical data)
    FARM_OK = "farm_ok"  # 2104, 2106
    # 2107, 2108, 2158: a farm idle until asked ("inactive but should be available upon demand"), sent at every
    # login: nothing is down, orders and history go (a request wakes the farm)
    FARM_INACTIVE = "farm_inactive"
    SUBSCRIPTION_LOST = "subscription_lost"  # 10182
    COMPETING_SESSION = "competing_session"  # 10197
    PACING = "pacing"  # 100 (messages/s), 162 (historical)
    CLIENT_ID_IN_USE = "client_id_in_use"  # 326
    READ_ONLY = "read_only"  # 321
    OTHER = "other"  # request/order errors, answered where they belong


_CLASSES: dict[int, ErrorClass] = {
    1100: ErrorClass.LINK_LOST,
    2110: ErrorClass.LINK_LOST,
    1101: ErrorClass.RESTORED_DATA_LOST,
    1102: ErrorClass.RESTORED,
    2103: ErrorClass.FARM_BROKEN,
    2105: ErrorClass.FARM_BROKEN,
    2104: ErrorClass.FARM_OK,
    2106: ErrorClass.FARM_OK,
    2107: ErrorClass.FARM_INACTIVE,
    2108: ErrorClass.FARM_INACTIVE,
    2158: ErrorClass.FARM_INACTIVE,
    10182: ErrorClass.SUBSCRIPTION_LOST,
    10197: ErrorClass.COMPETING_SESSION,
    100: ErrorClass.PACING,
    162: ErrorClass.PACING,
    326: ErrorClass.CLIENT_ID_IN_USE,
    321: ErrorClass.READ_ONLY,
}


def classify(code: int) -> ErrorClass:
    return _CLASSES.get(code, ErrorClass.OTHER)


def farm_name(code: int, text: str) -> str:
    """'market:usfarm' for 2103/2104, 'hmds:ushmds' for 2105/2106 (the name follows the last ':')."""
    return f"{farm_kind(code)}:{farm_of(code, text)}"


@dataclass(frozen=True)
class Status:
    """What the bridge publishes as GatewayStatus and answers in HealthReport."""

    state: GatewayStateName
    reason: str
    remedy: str = ""
    orders_allowed: bool = False
    data_degraded: bool = False
    reduce_only: bool = False  # orders allowed only when they reduce a position (a market-data farm is down)


# ------------------------------------------------------------------ actions the adapter carries out


@dataclass(frozen=True)
class ReissueAll:
    """Re-request every registered subscription (1101: the Gateway forgot them)."""

    why: str


@dataclass(frozen=True)
class ReissueStale:
    """Re-request market data that has had no update since `since` (a farm came back, 2104/2106)."""

    since: float
    why: str


@dataclass(frozen=True)
class Warn:
    """Log one line under `key`, at most once per `every` seconds."""

    key: str
    message: str
    every: float = 60.0


Action = ReissueAll | ReissueStale | Warn


@dataclass
class GatewayConditions:
    """Every fact that decides the state; the state itself is always derived, never stored."""

    phase: Phase = Phase.CONNECTING
    phase_reason: str = "starting"
    phase_remedy: str = ""
    link_lost: bool = False
    link_code: int = 0
    farms_down: dict[str, float] = field(default_factory=dict)  # 'kind:name' -> when it broke (monotonic s)
    stalled_reason: str = ""
    identity_problem: str = ""
    identity_remedy: str = ""
    sync_problem: str = ""
    readonly: bool = False
    competing_session_since: float | None = None

    def status(self) -> Status:
        """The one state: socket phase first, then identity, heartbeat, IB link, data farms."""
        if self.phase is not Phase.UP:
            return Status(self.phase.value, self.phase_reason, self.phase_remedy)
        market, hmds = self.farms_down_of("market"), self.farms_down_of("hmds")
        degraded = bool(market)
        if self.identity_problem:
            return Status(
                "WAITING_FOR_HUMAN", self.identity_problem, self.identity_remedy, data_degraded=degraded
            )
        if self.sync_problem:
            return Status(
                "SYNCING", self.sync_problem, "none needed: the sync is retried", data_degraded=degraded
            )
        if self.stalled_reason:
            return Status("STALLED", self.stalled_reason, STALLED_REMEDY, data_degraded=degraded)
        if self.link_lost:
            reason = f"the Gateway lost its link to IB ({self.link_code}): orders gated until 1101/1102"
            return Status("DEGRADED", reason, LINK_REMEDY, data_degraded=True)
        history = f"; {describe('hmds', hmds)}" if hmds else ""
        if market:
            reason = describe("market", market) + history
            return Status(
                "DEGRADED",
                reason,
                FARM_REMEDY,
                orders_allowed=not self.readonly,
                data_degraded=True,
                reduce_only=True,
            )
        reason = "session up, all checks passed" if not hmds else "session up" + history
        reason += " (read-only: orders refused)" if self.readonly else ""
        return Status("READY", reason, remedy=FARM_REMEDY if hmds else "", orders_allowed=not self.readonly)

    def farms_down_of(self, kind: str) -> list[str]:
        """The names of the farms of `kind` ('market' or 'hmds') that are down and count."""
        return sorted(f.split(":", 1)[1] for f in self.farms_down if f.startswith(f"{kind}:"))

    def set_phase(self, phase: Phase, reason: str, remedy: str = "") -> None:
        self.phase, self.phase_reason, self.phase_remedy = phase, reason, remedy

    def new_session(self) -> None:
        """Per-session facts die with the old socket: a connection attempt starts clean (farm codes arrive
        with the handshake, so this must run before it, never after)."""
        self.link_lost = False
        self.link_code = 0
        self.farms_down.clear()
        self.stalled_reason = ""
        self.sync_problem = ""
        self.identity_problem = ""
        self.identity_remedy = ""

    def on_gateway_code(self, code: int, text: str, req_id: int, now: float) -> list[Action]:
        """Apply one error/info code from the Gateway; returns what the adapter must do about it."""
        cls = classify(code)
        if cls is ErrorClass.LINK_LOST:
            self.link_lost, self.link_code = True, code
            return []
        if cls is ErrorClass.RESTORED_DATA_LOST:
            self.link_lost = False
            return [ReissueAll(why=f"{code}: connectivity restored, data lost")]
        if cls is ErrorClass.RESTORED:
            self.link_lost = False
            return []
        if cls is ErrorClass.FARM_BROKEN:
            kind, name = farm_kind(code), farm_of(code, text)
            if not farm_counts(kind, name):
                return [
                    Warn(f"farm-{name}", f"{code}: {name} is down; the stack trades nothing it serves", 900.0)
                ]
            self.farms_down.setdefault(f"{kind}:{name}", now)
            return []
        if cls is ErrorClass.FARM_OK:
            return self._farm_ok(code, text)
        if cls is ErrorClass.COMPETING_SESSION:
            if self.competing_session_since is None:
                self.competing_session_since = now
            return [Warn("10197", "no market data: a competing live session holds the data (10197)", 900.0)]
        if cls is ErrorClass.PACING:
            return [Warn(f"pacing-{code}", f"the Gateway reports a pacing violation ({code}): {text}", 60.0)]
        return []

    def _farm_ok(self, code: int, text: str) -> list[Action]:
        farm = farm_name(code, text)
        broke_at = self.farms_down.pop(farm, None)
        if broke_at is None:
            return []
        return [ReissueStale(since=broke_at, why=f"{code}: {farm} is OK again")]


def identity_problem(accounts: list[str], account: str, trading_mode: str, port: int) -> tuple[str, str]:
    """('', '') when the Gateway's accounts fit the settings; else (reason, remedy), account ids masked."""
    shown = ", ".join(mask_account(a) for a in accounts) or "none"
    if account not in accounts:
        return (
            f"IB_ACCOUNT {mask_account(account)} is not among the Gateway's accounts ({shown}) on port {port}",
            "log the Gateway in to that account, or set IB_ACCOUNT to one of its accounts",
        )
    paper = [a.startswith(PAPER_ACCOUNT_PREFIXES) for a in accounts]
    if trading_mode == "paper" and not all(paper):
        return (
            f"TRADING_MODE=paper but the Gateway on port {port} manages live accounts ({shown})",
            "log the paper Gateway in to the paper account, or fix IB_PORT; orders are refused meanwhile",
        )
    if trading_mode == "live" and any(paper):
        return (
            f"TRADING_MODE=live but the Gateway on port {port} manages paper accounts ({shown})",
            "connect to the live Gateway's port, or set TRADING_MODE=paper",
        )
    return "", ""
