"""Holdings the stack does not trade: a stock the simulator makes no market in, an option on a stock, an FX balance.

They sit in the account (positions, portfolio, net liquidation) at a fixed mark and never trade. Pure: contracts and
quantities in, values out. It must never merge a holding into a traded stock's position: each holding is its own
contract with its own conId, whatever its symbol (an AAPL option is not AAPL stock).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from procs.gateway_sim.contracts import SimContract

HOLDING_TYPES = ("STK", "OPT", "CASH")
ZERO = Decimal(0)
OPTION_MULTIPLIER = 100
# what one unit of each currency is worth in USD, for the portfolio's mark (rough, fixed: it never trades)
FX_MARKS = {"EUR": "1.08", "GBP": "1.27", "CHF": "1.12", "CAD": "0.73", "AUD": "0.66", "JPY": "0.0067"}
UNTRADED_STOCK_MARK = Decimal("50")


@dataclass(slots=True)
class UntradedHolding:
    contract: SimContract
    quantity: Decimal
    mark: Decimal  # per share (per underlying share for an option), per unit of currency for CASH

    @property
    def multiplier(self) -> Decimal:
        return Decimal(self.contract.multiplier or 1)

    @property
    def avg_cost(self) -> Decimal:
        """IB's avgCost of an option is per contract (price x multiplier); of a stock or a currency, per unit."""
        return self.mark * self.multiplier

    @property
    def market_value(self) -> Decimal:
        return self.quantity * self.mark * self.multiplier


def _stable_id(base: int, text: str) -> int:
    digest = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")
    return base + digest % 100_000_000


def third_friday(year: int, month: int) -> date:
    """The monthly options expiry."""
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def option_contract(underlying: SimContract, price: float, today: date) -> SimContract:
    """An at-the-money call expiring the month after `today`, with IB's OCC-style localSymbol."""
    step = 5 if price >= 25 else 1
    strike = float(max(step, round(price / step) * step))
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    expiry = third_friday(year, month)
    local = f"{underlying.symbol:<6}{expiry:%y%m%d}C{round(strike * 1000):08d}"
    return SimContract(
        con_id=_stable_id(600_000_000, f"{underlying.symbol}|OPT|{expiry:%Y%m%d}|{strike}|C"),
        symbol=underlying.symbol,
        sec_type="OPT",
        exchange="SMART",
        primary_exchange="CBOE",
        long_name=f"{underlying.symbol} {expiry:%b%d'%y} {strike:g} CALL",
        last_trade_date=f"{expiry:%Y%m%d}",
        strike=strike,
        right="C",
        multiplier=str(OPTION_MULTIPLIER),
        local_symbol=local,
        trading_class=underlying.symbol,
    )


def cash_contract(currency: str) -> SimContract:
    pair = f"{currency}.USD"
    return SimContract(
        con_id=_stable_id(700_000_000, pair),
        symbol=currency,
        sec_type="CASH",
        exchange="IDEALPRO",
        primary_exchange="IDEALPRO",
        long_name="European Union Euro" if currency == "EUR" else pair,
        local_symbol=pair,
        trading_class=pair,
    )


def stock_contract(symbol: str) -> SimContract:
    """A stock the simulator makes no market in (it only sits in the account)."""
    return SimContract(
        con_id=_stable_id(500_000_000, f"{symbol}|STK"),
        symbol=symbol,
        primary_exchange="NYSE",
        long_name=f"{symbol} (HELD, NOT TRADED)",
    )


def option_mark(price: float) -> Decimal:
    """Roughly what a one-month at-the-money call costs: 4% of the stock, on a 0.05 grid."""
    return max(
        Decimal("0.05"),
        (Decimal(repr(price)) * Decimal("0.04") / Decimal("0.05")).quantize(1) * Decimal("0.05"),
    )


def cash_mark(currency: str) -> Decimal:
    return Decimal(FX_MARKS.get(currency, "1"))


class UntradedHoldings:
    """The account's untraded holdings, one per (symbol, secType): setting one again changes its quantity."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], UntradedHolding] = {}

    def get(self, symbol: str, sec_type: str) -> UntradedHolding | None:
        return self._by_key.get((symbol, sec_type))

    def set(self, contract: SimContract, quantity: Decimal, mark: Decimal) -> UntradedHolding:
        """Quantity 0 removes it; the holding is returned either way (with 0 then, for the position message)."""
        key = (contract.symbol, contract.sec_type)
        existing = self._by_key.get(key)
        holding = UntradedHolding(
            existing.contract if existing else contract, quantity, existing.mark if existing else mark
        )
        if quantity == 0:
            self._by_key.pop(key, None)
        else:
            self._by_key[key] = holding
        return holding

    def by_con_id(self, con_id: int) -> UntradedHolding | None:
        return next((h for h in self._by_key.values() if h.contract.con_id == con_id), None)

    def all(self) -> list[UntradedHolding]:
        return list(self._by_key.values())

    def value(self) -> Decimal:
        return sum((h.market_value for h in self._by_key.values()), ZERO)
