"""Account values follow IB's rhythm: changed values go out at most every three (simulated) minutes, while
positions and portfolio lines go out with each fill."""

from __future__ import annotations

from procs.gateway_sim.handlers_orders import deliver, push_account
from procs.gateway_sim.orders import AccountChanged
from procs.gateway_sim.server import SimConfig, SimServer

MINUTE_NS = 60 * 10**9


def test_changed_account_values_wait_for_the_next_three_minute_push() -> None:
    server = SimServer(SimConfig(port=0))
    start = server.account_pushed_ns
    push_account(server, start + 5 * MINUTE_NS)
    assert server.account_pushed_ns == start  # nothing changed: nothing to push, however long it has been

    deliver(server, [AccountChanged(server.account)])
    assert server.account_changed
    push_account(server, start + 2 * MINUTE_NS)  # a fill two minutes after the last push: not yet
    assert server.account_changed and server.account_pushed_ns == start

    push_account(server, start + 3 * MINUTE_NS)
    assert not server.account_changed and server.account_pushed_ns == start + 3 * MINUTE_NS


def test_the_push_period_is_a_setting() -> None:
    server = SimServer(SimConfig(port=0, account_push_seconds=10))
    start = server.account_pushed_ns
    deliver(server, [AccountChanged(server.account)])
    push_account(server, start + 11 * 10**9)
    assert not server.account_changed
