"""What the simulator is started with: `SimConfig` and its defaults, apart from the server that runs it.

It lives alone so the session and the handlers can name the configuration without importing the server (which
imports them). It must never hold state of a running simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from procs.gateway_sim.contracts import DEFAULT_CONTRACTS, SimContract
from procs.gateway_sim.market import SimBar

CLOCK_MODES = ("session", "wall")
DEFAULT_PORT = 14002
DEFAULT_ACCOUNT = "DU1234567"


@dataclass
class SimConfig:
    """Everything the simulator is started with; `__main__` fills it from flags and settings."""

    port: int = DEFAULT_PORT  # 0: any free port (in-process tests)
    host: str = "127.0.0.1"
    account: str = DEFAULT_ACCOUNT
    speed: float = 1.0
    seed: int = 42
    cash: Decimal = Decimal("1000000")
    start: datetime | None = None  # sim clock start; None: the latest session open (or now, inside one)
    replay: Mapping[str, list[SimBar]] | None = None
    tick_interval: float = 0.25  # real seconds between quote updates of each subscribed symbol
    # IB pushes changed account values every 3 minutes (positions and portfolio at once, on every change)
    account_push_seconds: float = 180.0  # simulated seconds
    lazy_close: bool = False
    readonly: bool = False
    pacing: bool = True
    contracts: dict[str, SimContract] = field(default_factory=lambda: dict(DEFAULT_CONTRACTS))
    clock: str = "session"  # CLOCK_MODES: "wall" = real time, speed 1, the market open while it runs
    state_file: Path | None = None  # keeps the account across restarts (state_file.py); None: starts afresh
