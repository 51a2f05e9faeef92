"""When to try the Gateway again: capped exponential backoff with jitter, 326 handling, WAITING_FOR_HUMAN.

Pure: failure kinds and session lifetimes in, delays and decisions out (the caller sleeps and connects). It must
never pick another client id (orders placed under the fixed IB_CLIENT_ID are only manageable with it) and never
schedule two attempts at once: there is one policy object per bridge, owned by its one reconnect loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum


class Failure(Enum):
    """Why a connection attempt or a live session ended, in the words the trader sees."""

    REFUSED = "refused"  # nothing listens on the port: Gateway down or restarting
    TIMEOUT = "timeout"  # TCP open but no API handshake: not logged in, 2FA pending, dialog open, hung
    CLIENT_ID_IN_USE = "client_id_in_use"  # 326: the Gateway still holds our previous session
    CLOSED_DURING_CONNECT = (
        "closed"  # accepted, then closed before the API was ready (socat up, Gateway down)
    )
    LOST = "lost"  # a ready session's socket was closed
    ERROR = "error"  # anything else while connecting (OS error, protocol error)


REASONS: dict[Failure, str] = {
    Failure.REFUSED: "connection refused: nothing listens on the Gateway port",
    Failure.TIMEOUT: "the Gateway accepted TCP but did not complete the API handshake in time",
    Failure.CLIENT_ID_IN_USE: "client id already in use (326): the Gateway has not released the previous session",
    Failure.CLOSED_DURING_CONNECT: "the Gateway closed the connection before the API was ready",
    Failure.LOST: "the Gateway closed the API session",
    Failure.ERROR: "the connection attempt failed",
}

REMEDIES: dict[Failure, str] = {
    Failure.REFUSED: "start IB Gateway/TWS and log in, or check IB_HOST/IB_PORT",
    Failure.TIMEOUT: "log in to the Gateway (2FA); check API settings: socket clients enabled, 127.0.0.1 trusted, "
    "no 'accept incoming connection' dialog waiting",
    Failure.CLIENT_ID_IN_USE: "nothing if it clears; otherwise another program uses IB_CLIENT_ID: stop it "
    "(never run two bridges)",
    Failure.CLOSED_DURING_CONNECT: "check that the Gateway is logged in and that its API is enabled",
    Failure.LOST: "none needed, reconnecting; if it repeats, read the Gateway's log",
    Failure.ERROR: "read the bridge log for the error",
}


@dataclass(frozen=True)
class RetryDecision:
    """What to do after a failure: wait `delay` s; `waiting` = WAITING_FOR_HUMAN; `alert` = say so once now."""

    delay: float
    failures: int
    waiting: bool
    alert: bool


def backoff_delay(failures: int, base: float, cap: float, jitter: float, rng: random.Random) -> float:
    """Capped exponential backoff: base * 2**(failures-1), at most cap, shortened by up to `jitter` of itself."""
    raw = min(cap, base * 2.0 ** max(0, failures - 1))
    return raw * (1.0 - jitter * rng.random())


@dataclass
class ReconnectPolicy:
    """Counts consecutive failures and turns each into a delay; a session that lived `stable_seconds` resets it."""

    base: float = 0.25
    cap: float = 30.0
    max_failures: int = 10
    waiting_retry: float = 300.0
    stable_seconds: float = 10.0  # a session that dies younger counts as a failure: no connect/drop storm
    client_id_floor: float = 1.0  # after 326, give the Gateway at least this long to release the old session
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    waiting: bool = False

    def after_failure(self, kind: Failure) -> RetryDecision:
        """A connection attempt failed with `kind`."""
        self.failures += 1
        return self._decide(kind)

    def after_session_lost(self, lived_seconds: float) -> RetryDecision:
        """A session that had been ready for `lived_seconds` lost its socket."""
        if lived_seconds >= self.stable_seconds:
            self.failures = 0
        self.failures += 1
        return self._decide(Failure.LOST)

    def after_ready(self) -> bool:
        """The API is ready again; True when this ends WAITING_FOR_HUMAN (worth one 'recovered' line)."""
        was_waiting = self.waiting
        self.waiting = False
        return was_waiting

    def _decide(self, kind: Failure) -> RetryDecision:
        if self.failures >= self.max_failures:
            alert = not self.waiting
            self.waiting = True
            delay = self.waiting_retry * (1.0 - 0.1 * self.rng.random())
            return RetryDecision(delay=delay, failures=self.failures, waiting=True, alert=alert)
        delay = backoff_delay(self.failures, self.base, self.cap, self.jitter, self.rng)
        if kind is Failure.CLIENT_ID_IN_USE:
            delay = max(delay, self.client_id_floor * (1.0 + 0.5 * self.rng.random()))
        return RetryDecision(delay=delay, failures=self.failures, waiting=False, alert=False)


@dataclass(frozen=True)
class ConnectFailure:
    """One failed (or lost) session: its kind, and one line of detail."""

    kind: Failure
    detail: str


def failure_of(exc: BaseException) -> ConnectFailure:
    """What a failed connect attempt was, from the exception it raised."""
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailure(Failure.REFUSED, "connection refused")
    if isinstance(exc, TimeoutError):
        return ConnectFailure(Failure.TIMEOUT, "no API handshake in time")
    if isinstance(exc, ConnectionError):
        return ConnectFailure(Failure.CLOSED_DURING_CONNECT, str(exc) or type(exc).__name__)
    return ConnectFailure(Failure.ERROR, f"{type(exc).__name__}: {exc}")
