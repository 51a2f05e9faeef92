"""The simulator's fault state: which Gateway misbehaviours are in force, the real texts of IB's codes, pacing.

Pure values and small pure helpers; the server reads them and acts. Nothing here touches a socket or a loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The texts a real Gateway sends with these codes (api_message_codes, and what the stack's users have seen).
ERROR_TEXTS: dict[int, str] = {
    100: "Max rate of messages per second has been exceeded:max=50 rec={rec} (1)",
    103: "Duplicate order id",
    161: "Cancel attempted when order is not in a cancellable state. Order permId =",
    162: "Historical Market Data Service error message:API historical data query cancelled: {req}",
    200: "No security definition has been found for the request",
    202: "Order Canceled - reason:",
    321: "Error validating request.-'bW' : cause - The API interface is currently in Read-Only mode.",
    326: "Unable to connect as the client id is already in use. Retry with a unique client id.",
    354: "Requested market data is not subscribed.",
    434: "The order size cannot be zero.",
    504: "Not connected",
    1100: "Connectivity between IBKR and Trader Workstation has been lost.",
    1101: "Connectivity between IBKR and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IBKR and Trader Workstation has been restored - data maintained.",
    1300: "TWS socket port has been reset and this connection is being dropped. Please reconnect on port {port}",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2107: "HMDS data farm connection is inactive but should be available upon demand.ushmds",
    2108: "Market data farm connection is inactive but should be available upon demand.usfarm",
    2110: "Connectivity between Trader Workstation and server is broken. It will be restored automatically.",
    2158: "Sec-def data farm connection is OK:secdefnj",
    10147: "OrderId {req} that needs to be cancelled is not found.",
    10148: "OrderId {req} that needs to be cancelled cannot be cancelled, state: {state}.",
    10311: (
        "This order will be directly routed to NASDAQ. Direct routed orders may result in higher trade fees. "
        "Restriction is specified in Precautionary Settings of Global Configuration/API."
    ),
    10349: "Order TIF was set to DAY based on order preset.",
    10182: "Failed to request live updates (disconnected).",
    10197: "No market data during competing live session",
}

# What a Gateway says right after a client's startApi: its farms are up.
FARM_OK_CODES = (2104, 2106, 2158)


def error_text(code: int, **values: object) -> str:
    text = ERROR_TEXTS.get(code, f"Simulated error {code}")
    try:
        return text.format(**values)
    except (KeyError, IndexError):
        return text.split("{", 1)[0].rstrip(" :") if "{" in text else text


SILENT_MODES = ("off", "on", "after-handshake")

# `delay KIND SECONDS`: which requests (by message id) each kind of slow answer applies to
DELAY_KINDS: dict[str, tuple[int, ...]] = {
    "executions": (7,),  # reqExecutions: execDetails + execDetailsEnd
    "open-orders": (5, 16),  # reqOpenOrders, reqAllOpenOrders: openOrder/orderStatus + openOrderEnd
    "positions": (61,),  # reqPositions: position + positionEnd
    "contract-details": (9,),  # reqContractDetails
    "place": (3,),  # the openOrder/orderStatus acknowledging a new placeOrder (the order works at once)
}


@dataclass
class Faults:
    """Every switch the control socket and the Python API can flip; `describe()` is what `status` shows."""

    silent: str = "off"  # off | on (answer nothing) | after-handshake (answer the handshake, then nothing)
    handshake_delay: float = 0.0
    listening: bool = True
    pacing: bool = True
    pacing_limit: float = 50.0
    next_id_rollback: int | None = None  # one shot: the next connect gets this nextValidId
    lazy_close: bool = False
    readonly: bool = False
    fill_while_disconnected: bool = False  # armed: the next client to leave with working orders gets filled
    ib_link_down: bool = False  # after 1100, until 1101/1102: no market data flows
    market_farm_down: bool = False  # after 2103, until 2104
    hmds_farm_down: bool = False  # after 2105, until 2106: historical requests get 162
    competing_session: bool = False  # after 10197 with no reqId, until 2104/1101/1102: market data gets 10197
    delays: dict[str, float] = field(default_factory=dict)  # kind (DELAY_KINDS) -> seconds; absent: on time

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.silent != "off":
            out["silent"] = self.silent
        if self.handshake_delay:
            out["handshake_delay"] = self.handshake_delay
        if not self.listening:
            out["listen"] = "off"
        if not self.pacing:
            out["pacing"] = "off"
        for name in ("next_id_rollback",):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("lazy_close", "readonly", "fill_while_disconnected", "ib_link_down"):
            if getattr(self, name):
                out[name] = True
        for name in ("market_farm_down", "hmds_farm_down", "competing_session"):
            if getattr(self, name):
                out[name] = True
        if self.delays:
            out["delays"] = dict(self.delays)
        return out

    @property
    def streams_paused(self) -> bool:
        return self.ib_link_down or self.market_farm_down or self.competing_session

    def apply_code(self, code: int) -> bool:
        """Track the state a broadcast code puts the Gateway in; True when subscriptions are lost (1101)."""
        if code in (1100, 2110):
            self.ib_link_down = True
        elif code in (1101, 1102):
            self.ib_link_down = self.competing_session = False
        elif code == 2103:
            self.market_farm_down = True
        elif code == 2104:
            self.market_farm_down = self.competing_session = False
        elif code == 2105:
            self.hmds_farm_down = True
        elif code == 2106:
            self.hmds_farm_down = False
        elif code == 10197:
            self.competing_session = True
        return code == 1101


@dataclass
class PacingBucket:
    """IB's 50 messages/s as a token bucket: bursts up to the limit pass, a sustained excess runs it dry.

    A sliding count would punish a client that paces itself correctly but whose messages arrive bunched by
    network or loop delay (ib_async sends 45 at the start of each second); the bucket tolerates that jitter.
    """

    rate: float = 50.0
    tokens: float = 50.0
    last: float = field(default=0.0)
    started: bool = False

    def allow(self, now: float) -> bool:
        if not self.started:
            self.started, self.last, self.tokens = True, now, self.rate
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass
class RateMeter:
    """Messages per second over the last completed second, for `status`."""

    count: int = 0
    window_start: float = 0.0
    last_rate: float = 0.0
    total: int = 0

    def add(self, now: float, n: int = 1) -> None:
        self.roll(now)
        self.count += n
        self.total += n

    def roll(self, now: float) -> float:
        if now - self.window_start >= 1.0:
            elapsed = now - self.window_start
            self.last_rate = self.count / elapsed if elapsed < 2.0 else 0.0
            self.count, self.window_start = 0, now
        return self.last_rate
