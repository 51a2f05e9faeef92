"""Fixtures for the executor's tests: settings in an isolated stack home, a real ledger file, a ready Executor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from procs.executor.engine import Executor
from procs.executor.hours import MarketClock
from procs.executor.ledger import Ledger, open_ledger
from shared.config import Settings, load_settings
from shared.messages import GatewayStatus, Quote

TICKS = {"AAPL": Decimal("0.01"), "MSFT": Decimal("0.01"), "SPY": Decimal("0.01")}


def quote(symbol: str = "AAPL", bid: float = 99.99, ask: float = 100.01, last: float = 100.0) -> Quote:
    return Quote(symbol=symbol, bid=bid, ask=ask, last=last)


class WallClock:
    """A settable wall clock (ns) so order expiry and rate windows are tested without sleeping."""

    def __init__(self, start_ns: int = 1_795_000_000 * 10**9) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)


@pytest.fixture
def settings_for(stack_env: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {"symbols": "AAPL,MSFT,SPY", "market_hours": "always"}
        return load_settings(**{**base, **overrides})

    return make


@pytest.fixture
def ledger(short_tmp: Path) -> Iterator[Ledger]:
    led = open_ledger(short_tmp / "data" / "ledger.sqlite")
    try:
        yield led
    finally:
        led.close()


@pytest.fixture
def make_executor(
    settings_for: Callable[..., Settings], short_tmp: Path
) -> Iterator[Callable[..., Executor]]:
    """A synced Executor over a real ledger file, gateway READY, quotes for AAPL/MSFT/SPY at ~100 and their ticks;
    `wall` and `mono` stand in for the real clocks; `synced=False`: before the first reconciliation."""
    opened: list[Ledger] = []

    def make(
        wall: WallClock | None = None,
        *,
        mono: WallClock | None = None,
        synced: bool = True,
        **overrides: Any,
    ) -> Executor:
        led = open_ledger(short_tmp / "data" / f"ledger{len(opened)}.sqlite")
        opened.append(led)
        ex = Executor(settings_for(**overrides), led, MarketClock(None), wall=wall or WallClock(), mono=mono)
        for sym, tick in TICKS.items():
            ex.on_contract(sym, tick)
        ex.on_gateway(GatewayStatus(state="READY", orders_allowed=True))
        for sym in TICKS:
            ex.on_quote(quote(sym))
        if synced:
            ex.mark_synced()
        return ex

    yield make
    for led in opened:
        led.close()
