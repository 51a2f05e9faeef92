"""The simulated paper account's books: cash, positions with their cost basis, realized P&L and commissions.

Exact Decimal arithmetic only; floats appear solely in what is marked to a market price for display. It must
never decide whether a trade happens (that is the broker's job), only book it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)
CENTS = Decimal("0.01")
SIX_PLACES = Decimal("0.000001")
ALLOCATION = Decimal("0.00000001")
MARGIN_RATE = Decimal("0.25")  # maintenance and intraday initial margin on US stocks
REG_T_RATE = Decimal("0.5")  # Regulation T initial margin on US stocks (overnight)
BUYING_POWER_MULTIPLE = 4  # a margin account's intraday buying power: 4x available funds


@dataclass(slots=True)
class Holding:
    """One symbol's position. `basis` is the signed cost of the open shares including their commissions:
    positive for a long (what was paid), negative for a short (what was received)."""

    symbol: str
    con_id: int
    position: Decimal = ZERO
    basis: Decimal = ZERO
    realized: Decimal = ZERO
    last_price: Decimal = ZERO

    @property
    def avg_cost(self) -> Decimal:
        return (self.basis / self.position).quantize(SIX_PLACES) if self.position else ZERO


def share(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """amount x part / whole to 1e-8, so that the books only ever add numbers with few decimals: sums stay exact,
    and what one side of a split does not take, the other does."""
    return (amount * part / whole).quantize(ALLOCATION)


def ratio(a: Decimal, b: Decimal) -> Decimal:
    """a / b to six places (an average price), 0 when b is 0."""
    return (a / b).quantize(SIX_PLACES) if b else ZERO


class SimAccount:
    """Books fills; reports account values and the portfolio at given marks."""

    def __init__(self, account: str, cash: Decimal) -> None:
        self.account = account
        self.cash = cash
        self.realized = ZERO
        self.commissions = ZERO
        self.holdings: dict[str, Holding] = {}

    def book_fill(
        self, symbol: str, con_id: int, bought: bool, qty: Decimal, price: Decimal, commission: Decimal
    ) -> Decimal:
        """Apply one fill; returns the realized P&L of the part that closed a position (net of commissions)."""
        h = self.holdings.setdefault(symbol, Holding(symbol, con_id))
        sign = 1 if bought else -1
        self.cash += -sign * price * qty - commission
        self.commissions += commission
        h.last_price = price
        closing = min(qty, abs(h.position)) if h.position and (h.position > 0) != bought else ZERO
        realized = ZERO
        if closing:  # the part that reduces the position realizes P&L against its share of the basis
            close_commission = commission if closing == qty else share(commission, closing, qty)
            removed = h.basis if closing == abs(h.position) else share(h.basis, closing, abs(h.position))
            realized = -sign * price * closing - close_commission - removed
            h.basis -= removed
            h.position += sign * closing
            commission -= close_commission
            qty -= closing
        if qty:  # the rest opens or adds, its commission going into the cost basis as IB does
            h.basis += sign * price * qty + commission
            h.position += sign * qty
        h.realized += realized
        self.realized += realized
        return realized

    def mark(self, symbol: str, mark: Callable[[str], float] | None) -> Decimal:
        """The price a holding is valued at: the mark function's, else the last fill's."""
        h = self.holdings[symbol]
        if mark is not None:
            try:
                return Decimal(repr(float(mark(symbol))))
            except (KeyError, ValueError):
                pass
        return h.last_price

    def values(
        self, mark: Callable[[str], float] | None = None, other_value: Decimal = ZERO
    ) -> list[tuple[str, str, str]]:
        """IB's account value tags as (tag, value, currency); `other_value` is what the holdings that never trade
        here (options, currencies) are worth: in the net liquidation, never in the stock value."""
        stock_value = gross = unrealized = ZERO
        for symbol, h in self.holdings.items():
            value = h.position * self.mark(symbol, mark)
            stock_value += value
            gross += abs(value)
            unrealized += value - h.basis
        gross += abs(other_value)
        net_liq = self.cash + stock_value + other_value
        margin = gross * MARGIN_RATE
        available = net_liq - margin
        money = {
            "NetLiquidation": net_liq,
            "TotalCashValue": self.cash,
            "SettledCash": self.cash,
            "AccruedCash": ZERO,
            "CashBalance": self.cash,
            "EquityWithLoanValue": net_liq,
            "PreviousDayEquityWithLoanValue": net_liq,
            "GrossPositionValue": gross,
            "StockMarketValue": stock_value,
            "RegTEquity": net_liq,
            "RegTMargin": gross * REG_T_RATE,
            "SMA": max(ZERO, net_liq - gross * REG_T_RATE),
            "InitMarginReq": margin,
            "MaintMarginReq": margin,
            "AvailableFunds": available,
            "ExcessLiquidity": available,
            "BuyingPower": max(ZERO, available * BUYING_POWER_MULTIPLE),
            "UnrealizedPnL": unrealized,
            "RealizedPnL": self.realized,
        }
        # A stock account has no margin change ahead (no futures, no overnight rate): the Full* (all segments)
        # and LookAhead* figures are the current ones, as IB reports them for such an account.
        for tag in ("InitMarginReq", "MaintMarginReq", "AvailableFunds", "ExcessLiquidity"):
            money["Full" + tag] = money[tag]
            money["LookAhead" + tag] = money[tag]
        rows = [
            ("AccountCode", self.account, ""),
            ("AccountType", "INDIVIDUAL", ""),
            ("Currency", "USD", "USD"),
        ]
        rows += [(tag, str(v.quantize(CENTS)), "USD") for tag, v in money.items()]
        rows.append(("CashBalance", str(self.cash.quantize(CENTS)), "BASE"))
        # the ratios and counters IB reports without a currency
        rows.append(("Cushion", str(ratio(available, net_liq)) if net_liq > 0 else "0", ""))
        rows.append(("Leverage", str(ratio(gross, net_liq)) if net_liq > 0 else "0", ""))
        rows.append(("LookAheadNextChange", "0", ""))
        rows.append(("HighestSeverity", "0", ""))
        rows.append(("DayTradesRemaining", "-1", ""))
        return rows

    def portfolio(
        self, mark: Callable[[str], float] | None = None
    ) -> list[tuple[str, int, Decimal, float, float, Decimal, float, float]]:
        """(symbol, conId, position, marketPrice, marketValue, avgCost, unrealizedPNL, realizedPNL) per symbol
        traded, closed ones included with position 0 (IB reports those for the day too)."""
        rows = []
        for symbol, h in self.holdings.items():
            price = self.mark(symbol, mark)
            value = h.position * price
            rows.append(
                (
                    symbol,
                    h.con_id,
                    h.position,
                    float(price),
                    float(value.quantize(CENTS)),
                    h.avg_cost,
                    float((value - h.basis).quantize(CENTS)),
                    float(h.realized.quantize(CENTS)),
                )
            )
        return rows
