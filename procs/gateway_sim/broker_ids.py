"""The ids the simulated broker hands out and remembers: perm ids, exec ids, the negative ids of orders a human
places in TWS, and the order ids API clients have used.

None may ever repeat, across simulator restarts too: the stack dedups fills by exec id, so `counters()` is what
state_file keeps and `resume()` goes on from. It must never read a clock: the session id comes in.
"""

from __future__ import annotations

from collections.abc import Mapping


class BrokerIds:
    """Every id of one paper account's broker; `session` (seconds since the epoch) seeds the perm and exec ids."""

    def __init__(self, session: int) -> None:
        self._exec_prefix = f"{session & 0xFFFFFFFF:08x}"
        self._perm_last = (session % 100_000) * 10_000  # the last perm id given out
        self._exec_count = 0
        self._manual_orders = 0
        self._used: set[int] = set()

    def is_used(self, order_id: int) -> bool:
        """Whether an API client ever placed an order with this id (a used id is never taken again)."""
        return order_id in self._used

    def use(self, order_id: int) -> int:
        """Take an API client's order id for a new order; returns the perm id the order gets."""
        self._used.add(order_id)
        self._perm_last += 1
        return self._perm_last

    def next_valid_id(self) -> int:
        """One above the highest order id an API client ever used (at least 1)."""
        return max((i for i in self._used if i > 0), default=0) + 1

    def next_exec_id(self) -> str:
        """A new execution's id, IB's shape: `<session>.<count>.01.01` (a correction bumps the last part)."""
        self._exec_count += 1
        return f"{self._exec_prefix}.{self._exec_count:08x}.01.01"

    def next_manual_order_id(self) -> int:
        """Orders a human places in TWS are bound to client 0 with negative ids (IB's reqAutoOpenOrders), so they
        never collide with an API client's ids."""
        self._manual_orders += 1
        return -self._manual_orders

    def counters(self) -> dict[str, str]:
        """What must keep counting across a restart so no perm id, exec id or manual order id repeats."""
        return {
            "perm_last": str(self._perm_last),
            "exec_prefix": self._exec_prefix,
            "exec_count": str(self._exec_count),
            "manual_orders": str(self._manual_orders),
        }

    def resume(self, counters: Mapping[str, str]) -> None:
        """Go on counting from an earlier run's `counters()`."""
        self._perm_last = max(self._perm_last, int(counters["perm_last"]))
        self._exec_prefix = str(counters["exec_prefix"])
        self._exec_count = int(counters["exec_count"])
        self._manual_orders = int(counters["manual_orders"])
