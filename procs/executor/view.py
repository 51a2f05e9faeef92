"""What the executor's adapters may read of its core: positions, working orders, the risk state, stops, the
flatten, other holdings, counters, and a few named ledger queries (executions, days, adjustments).

Reading only: every map is handed out as a read-only Mapping, and nothing here changes the core's state or writes
the ledger (except that asking for today's record opens it, as Book.day_record does). Adapters change the core
only through the Executor's commands (engine.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from procs.executor.book import Book
from procs.executor.controls import Controls
from procs.executor.ledger import DayRecord, HaltState, Ledger
from procs.executor.ledger_operator import FlattenIntent
from procs.executor.orders import OrderRecord
from procs.executor.protect import ProtectiveStops
from procs.executor.records import PositionRecord
from procs.executor.risk import RiskLimits
from procs.executor.sizing import QuoteSnapshot
from shared.config import Settings
from shared.messages import GatewayStatus, Position


class ExecutorView:
    """A read-only window on the core's book, ledger, stops and flatten."""

    def __init__(self, book: Book, ledger: Ledger, stops: ProtectiveStops, controls: Controls) -> None:
        self._book = book
        self._ledger = ledger
        self._stops = stops
        self._controls = controls

    # ------------------------------------------------------------------ settings and clocks

    @property
    def settings(self) -> Settings:
        return self._book.settings

    @property
    def limits(self) -> RiskLimits:
        return self._book.limits

    def wall(self) -> int:
        return self._book.wall()

    def mono(self) -> int:
        return self._book.mono()

    def market_now(self) -> int | None:
        return self._book.market_now()

    def trading_day(self) -> str:
        return self._book.trading_day()

    # ------------------------------------------------------------------ the book

    @property
    def synced(self) -> bool:
        return self._book.synced

    @property
    def halt(self) -> HaltState:
        return self._book.halt

    @property
    def gateway(self) -> GatewayStatus | None:
        return self._book.gateway

    @property
    def farm_down(self) -> bool:
        return self._book.farm_down

    def order_gate(self) -> str:
        return self._book.order_gate()

    @property
    def circuit_breaker(self) -> str:
        return self._book.breaker.state

    @property
    def blocked(self) -> Mapping[str, tuple[Decimal, Decimal]]:
        return self._book.blocked

    @property
    def flattening(self) -> Mapping[str, FlattenIntent]:
        return self._book.flattening

    @property
    def counters(self) -> Mapping[str, float]:
        return self._book.counters

    @property
    def last_rejection(self) -> str:
        return self._book.last_rejection

    @property
    def quotes(self) -> Mapping[str, QuoteSnapshot]:
        return self._book.quotes

    @property
    def ticks(self) -> Mapping[str, Decimal]:
        return self._book.ticks

    @property
    def broker_positions(self) -> Mapping[str, Decimal]:
        return self._book.broker_positions

    @property
    def other_holdings(self) -> Mapping[int, Position]:
        return self._book.other_holdings

    def position(self, symbol: str) -> Decimal:
        return self._book.position(symbol)

    def working_shares(self, symbol: str) -> Decimal:
        return self._book.working_shares(symbol)

    def marks(self) -> dict[str, Decimal]:
        return self._book.marks()

    def holdings(self) -> dict[str, tuple[Decimal, Decimal]]:
        """symbol -> (quantity, average cost), from the ledger."""
        return self._book.holdings()

    def day_record(self) -> DayRecord:
        return self._book.day_record()

    def daily_pnl(self) -> Decimal:
        return self._book.daily_pnl()

    # ------------------------------------------------------------------ stops and flatten

    def stops_of(self, symbol: str) -> list[OrderRecord]:
        return self._stops.stops_of(symbol)

    def stop_view(self) -> dict[str, dict[str, str]]:
        return self._stops.stop_view()

    def unprotected(self) -> dict[str, float]:
        """symbol -> seconds it has had a position and no live stop."""
        return self._stops.unprotected()

    def flatten_view(self) -> dict[str, dict[str, str]]:
        return self._controls.flatten_view()

    # ------------------------------------------------------------------ named ledger queries

    @property
    def positions(self) -> Mapping[str, PositionRecord]:
        return self._ledger.positions

    @property
    def working(self) -> Mapping[str, OrderRecord]:
        """Unsettled entry orders (stops excluded), by client order id."""
        return self._ledger.working

    def order(self, client_order_id: str) -> OrderRecord | None:
        return self._ledger.order(client_order_id)

    def orders(self, *, working_only: bool = False, limit: int = 200) -> list[OrderRecord]:
        return self._ledger.orders(working_only=working_only, limit=limit)

    def cash(self) -> Decimal:
        return self._ledger.cash()

    def day(self, trading_day: str) -> DayRecord | None:
        return self._ledger.day(trading_day)

    def fills(self, *, replaced: bool = False) -> list[dict[str, Any]]:
        return self._ledger.fills(replaced=replaced)

    def has_fill(self, exec_id: str) -> bool:
        return self._ledger.has_fill(exec_id)

    def booked_fills(self, exec_ids: list[str]) -> dict[str, bool]:
        """exec_id -> whether its commission is booked too, for the executions the ledger holds."""
        return self._ledger.booked_fills(exec_ids)

    def last_exec_ns(self) -> int:
        """When the newest booked execution happened (0: none yet)."""
        return int(self._ledger.meta("last_exec_ns", "0"))

    def oldest_unknown_commission_ns(self) -> int:
        return self._ledger.oldest_unknown_commission_ns()

    def unknown_commissions(self) -> int:
        return self._ledger.unknown_commissions()

    def adjustments(self) -> list[dict[str, Any]]:
        return self._ledger.adjustments()

    def persisted_halt(self) -> HaltState:
        """The halt as the ledger holds it (what a restart would start with)."""
        return self._ledger.halt_state()

    @property
    def ledger_syncs(self) -> int:
        return self._ledger.syncs
