"""How the settings that are more than one plain value are read and cross-checked: symbol lists, per-program
heartbeat budgets, per-symbol stop percents, and whether paper/live, port and account tell the same story.

Pure: text or values in, parsed values out or ValueError with one line naming the fix (pydantic puts the key in
front). It must never read the environment or a file, and never show an account id unmasked.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from shared.masking import mask_account
from shared.programs import PROGRAM_NAMES

# Ports of a real Gateway/TWS: the simulator must never take one, and paper/live must match them.
LIVE_PORTS = frozenset({4001, 7496})
PAPER_PORTS = frozenset({4002, 7497})
REAL_GATEWAY_PORTS = LIVE_PORTS | PAPER_PORTS
PAPER_ACCOUNT_PREFIXES = ("DU", "DF")
SUPERVISED_PROGRAMS = PROGRAM_NAMES  # shared/programs.py, in start order

_TICKER = r"[A-Z][A-Z0-9.]{0,9}"


def split_csv(value: Any) -> Any:
    """ "aapl, msft" -> ("AAPL", "MSFT"); anything but text passes through for pydantic to judge."""
    if isinstance(value, str):
        return tuple(part.strip().upper() for part in value.split(",") if part.strip())
    return value


def check_tickers(value: tuple[str, ...]) -> tuple[str, ...]:
    """At least one symbol, each one shaped like a ticker."""
    if not value:
        raise ValueError("needs at least one symbol, e.g. SYMBOLS=AAPL,MSFT")
    bad = [s for s in value if not re.fullmatch(_TICKER, s)]
    if bad:
        raise ValueError(f"not a ticker: {', '.join(bad)}")
    return value


def parse_heartbeat_budgets(text: str) -> tuple[tuple[str, float], ...]:
    """ "features=60,bridge=30" -> (("features", 60.0), ("bridge", 30.0)); each a supervised program, positive."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, seconds = part.partition("=")
        if name.strip() not in SUPERVISED_PROGRAMS:
            raise ValueError(
                f"unknown program {name.strip()!r}; use program=seconds with one of {', '.join(SUPERVISED_PROGRAMS)}"
            )
        try:
            budget = float(seconds)
        except ValueError:
            raise ValueError(f"{part!r} is not program=seconds, e.g. features=60") from None
        if budget <= 0:
            raise ValueError(f"{part!r}: the budget must be positive")
        out.append((name.strip(), budget))
    return tuple(out)


def parse_stop_percents(text: str) -> tuple[tuple[str, Decimal], ...]:
    """ "3,NVDA=5" -> (("", 3), ("NVDA", 5)); a percent must lie in (0, 50] (a stop further away protects nothing)."""
    out: list[tuple[str, Decimal]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        symbol, _, pct = part.rpartition("=")
        symbol = symbol.strip().upper()
        if symbol and not re.fullmatch(_TICKER, symbol):
            raise ValueError(f"{part!r}: {symbol!r} is not a ticker; use PCT or SYMBOL=PCT, e.g. 3,NVDA=5")
        try:
            percent = Decimal(pct.strip())
        except ArithmeticError:
            raise ValueError(f"{part!r} is not a percent; use PCT or SYMBOL=PCT, e.g. 3,NVDA=5") from None
        if not percent.is_finite() or not 0 < percent <= 50:
            raise ValueError(f"{part!r}: a stop percent must be above 0 and at most 50")
        if any(s == symbol for s, _ in out):
            raise ValueError(f"{symbol or 'the default'} is given twice")
        out.append((symbol, percent))
    return tuple(out)


def check_stops(fixed: dict[str, Decimal], trail: dict[str, Decimal]) -> None:
    """One stop kind per symbol: both kinds for every symbol, or both named for one symbol, is refused."""
    both = sorted(set(fixed) & set(trail))
    if both:
        who = "every symbol" if both[0] == "" else ", ".join(both)
        raise ValueError(
            f"STOP_LOSS_PERCENT and TRAILING_STOP_PERCENT both set for {who}: choose one stop kind per symbol"
        )


def check_identity(gateway: str, port: int, mode: str, account: str, live_confirmed: bool) -> None:
    """Paper/live, port and account prefix must tell the same story; raises ValueError naming the key."""
    paper_account = account.startswith(PAPER_ACCOUNT_PREFIXES)
    if gateway == "sim":
        if port in REAL_GATEWAY_PORTS:
            raise ValueError(
                f"IB_PORT={port} is a real Gateway/TWS port; the simulator must use another (default 14002)"
            )
        if mode == "live":
            raise ValueError("TRADING_MODE=live needs GATEWAY=ib; the simulator is paper only")
    if mode == "paper":
        if gateway == "ib" and port in LIVE_PORTS:
            raise ValueError(
                f"IB_PORT={port} is a live port but TRADING_MODE=paper; use 4002 (Gateway) or 7497 (TWS)"
            )
        if not paper_account:
            raise ValueError(
                f"IB_ACCOUNT {mask_account(account)} is not a paper account (DU...) but TRADING_MODE=paper"
            )
        return
    if not live_confirmed:
        raise ValueError("TRADING_MODE=live trades real money: set LIVE_TRADING_CONFIRMED=true to confirm")
    if port in PAPER_PORTS:
        raise ValueError(
            f"IB_PORT={port} is a paper port but TRADING_MODE=live; use 4001 (Gateway) or 7496 (TWS)"
        )
    if paper_account:
        raise ValueError(f"IB_ACCOUNT {mask_account(account)} is a paper account but TRADING_MODE=live")
