"""Fixtures for the simulator's end-to-end tests: a shared subprocess simulator, fresh in-process ones, and a
unique client id per test (the harness itself is in sim_harness.py).

Tests that only read or trade on their own client id share one subprocess simulator (started once); tests that
inject faults get a fresh in-process GatewaySim each, so nothing leaks between them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from procs.gateway_sim.inprocess import GatewaySim
from tests.support.sim import RunningSim, running_sim

SPEED = 60.0  # five-second bars every 83 ms


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[RunningSim]:
    with running_sim(speed=SPEED) as sim:
        yield sim


@pytest.fixture
def sim() -> Iterator[GatewaySim]:
    """A fresh in-process simulator for a test that changes Gateway-wide state (faults)."""
    with GatewaySim(speed=SPEED) as gateway:
        yield gateway


_client_ids = itertools.count(100)


@pytest.fixture
def client_id() -> int:
    """A client id no other test of this session uses (the shared simulator enforces uniqueness: 326)."""
    return next(_client_ids)
