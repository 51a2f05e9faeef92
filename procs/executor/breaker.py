"""The circuit breaker on repeated broker rejects and send errors: stop sending after N failures in a row.

CLOSED sends; OPEN refuses new orders for a cool-down; then HALF_OPEN lets one order through, and its outcome
closes or re-opens the breaker. Unlike the kill switch (the persisted halt), it is about a failing path, not a
loss, so it may close by itself. Every state change is one structured event line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from shared.log import event

BreakerState = Literal["CLOSED", "OPEN", "HALF_OPEN"]
COOL_DOWN_SECONDS = 60.0


class CircuitBreaker:
    def __init__(
        self,
        max_errors: int,
        cool_down: float = COOL_DOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_errors = max_errors
        self.cool_down = cool_down
        self._clock = clock
        self.state: BreakerState = "CLOSED"
        self.errors = 0  # failures in a row
        self.last_error = ""
        self._opened_at = 0.0
        self._trial_in_flight = False

    def allows_order(self) -> bool:
        """May a new (risk-increasing) order be sent now? Moves OPEN to HALF_OPEN after the cool-down."""
        if self.state == "OPEN" and self._clock() - self._opened_at >= self.cool_down:
            self._move("HALF_OPEN")
        if self.state == "HALF_OPEN":
            return not self._trial_in_flight
        return self.state == "CLOSED"

    def order_sent(self) -> None:
        """An order went out; in HALF_OPEN it is the one trial."""
        if self.state == "HALF_OPEN":
            self._trial_in_flight = True

    def record_success(self) -> None:
        """The broker accepted or filled an order."""
        self.errors = 0
        self._trial_in_flight = False
        if self.state != "CLOSED":
            self._move("CLOSED")

    def record_failure(self, what: str) -> None:
        """A reject, a refused send or a send that timed out."""
        self.errors += 1
        self.last_error = what
        self._trial_in_flight = False
        if self.state == "HALF_OPEN" or (self.state == "CLOSED" and self.errors >= self.max_errors):
            self._opened_at = self._clock()
            self._move("OPEN")

    @property
    def is_open(self) -> bool:
        return self.state != "CLOSED"

    def _move(self, state: BreakerState) -> None:
        event(
            "circuit_breaker",
            previous=self.state,
            state=state,
            errors=self.errors,
            max_errors=self.max_errors,
            last_error=repr(self.last_error),
        )
        self.state = state
