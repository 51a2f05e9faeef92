"""The circuit breaker opens after N failures in a row, half-opens after the cool-down, closes on success."""

from __future__ import annotations

from procs.executor.breaker import CircuitBreaker


def state_of(b: CircuitBreaker) -> str:
    return b.state  # read through a call: mypy would otherwise keep the narrowed literal from the last assert


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_max_errors_in_a_row_and_a_success_resets_the_count() -> None:
    b = CircuitBreaker(3, cool_down=60, clock=Clock())
    b.record_failure("a")
    b.record_failure("b")
    b.record_success()
    b.record_failure("c")
    b.record_failure("d")
    assert b.allows_order() and b.state == "CLOSED"
    b.record_failure("e")
    assert state_of(b) == "OPEN" and not b.allows_order() and b.last_error == "e"


def test_half_open_lets_one_trial_through_and_its_outcome_decides() -> None:
    clock = Clock()
    b = CircuitBreaker(1, cool_down=60, clock=clock)
    b.record_failure("x")
    clock.t = 59
    assert not b.allows_order()
    clock.t = 60
    assert b.allows_order() and b.state == "HALF_OPEN"
    b.order_sent()
    assert not b.allows_order()  # only one trial at a time
    b.record_failure("again")
    assert state_of(b) == "OPEN"
    clock.t = 120
    assert b.allows_order()
    b.order_sent()
    b.record_success()
    assert state_of(b) == "CLOSED" and b.allows_order()
