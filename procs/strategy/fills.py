"""The backtest's fill model and accounting: targets -> trades -> equity curve -> P&L, drawdown, Sharpe.

Fill model (documented in bin/backtest --help): a target decided at a bar's close is sized like the executor
does (shares = round(weight * notional / that close)) and filled at the symbol's NEXT bar open, moved against
us by `slippage_bps`, paying `commission_per_share` (at least `min_commission` per trade). A target on a
symbol's last bar is never filled. Equity is marked at every bar close. Pure: it never reads files or clocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from procs.features.bars import NS
from shared.messages import Bar, TargetPosition

SESSION_SECONDS = 6.5 * 3600  # regular US session: Sharpe is annualised over 252 of these
TRADING_DAYS = 252


@dataclass(frozen=True)
class FillModel:
    notional: float = 10_000.0  # dollars per unit of weight (POSITION_NOTIONAL)
    slippage_bps: float = 2.0
    commission_per_share: float = 0.005
    min_commission: float = 1.0


@dataclass(frozen=True)
class Trade:
    time_ns: int
    symbol: str
    quantity: int  # signed: + buy, - sell
    price: float
    commission: float
    reason: str


@dataclass
class BacktestResult:
    initial_equity: float
    trades: list[Trade] = field(default_factory=list)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (bar end ns, equity)

    @property
    def final_equity(self) -> float:
        return self.curve[-1][1] if self.curve else self.initial_equity

    @property
    def pnl(self) -> float:
        return self.final_equity - self.initial_equity

    @property
    def commissions(self) -> float:
        return math.fsum(t.commission for t in self.trades)

    def max_drawdown(self) -> tuple[float, float]:
        """Largest fall from a running peak: (dollars, fraction of that peak)."""
        peak, worst, worst_frac = self.initial_equity, 0.0, 0.0
        for _, equity in self.curve:
            peak = max(peak, equity)
            if peak - equity > worst:
                worst, worst_frac = peak - equity, (peak - equity) / peak
        return worst, worst_frac

    def sharpe(self, bar_seconds: int) -> float:
        """Annualised Sharpe ratio of per-bar equity returns (risk-free 0); 0 when returns do not vary."""
        equities = [self.initial_equity] + [e for _, e in self.curve]
        rets = [b / a - 1.0 for a, b in zip(equities, equities[1:], strict=False) if a > 0]
        if len(rets) < 2:
            return 0.0
        mean = math.fsum(rets) / len(rets)
        std = math.sqrt(math.fsum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
        if std == 0:
            return 0.0
        return mean / std * math.sqrt(TRADING_DAYS * SESSION_SECONDS / bar_seconds)


def simulate(bars: Sequence[Bar], targets: Sequence[TargetPosition], model: FillModel) -> BacktestResult:
    """Fill `targets` against `bars` (the BAR_SECONDS bars they were decided on) under `model`."""
    symbols = sorted({b.symbol for b in bars})
    result = BacktestResult(initial_equity=model.notional * max(1, len(symbols)))
    decided = {(t.symbol, t.feature_end_ns): t for t in targets}
    cash = result.initial_equity
    held: dict[str, int] = dict.fromkeys(symbols, 0)
    last_close: dict[str, float] = {}
    pending: dict[str, TargetPosition] = {}
    ordered = sorted(bars, key=lambda b: (b.start_ns + b.bar_seconds * NS, b.symbol))
    for i, bar in enumerate(ordered):
        want = pending.pop(bar.symbol, None)
        if want is not None:
            cash -= _fill(result, held, bar, want, model)
        last_close[bar.symbol] = bar.close
        end = bar.start_ns + bar.bar_seconds * NS
        chosen = decided.get((bar.symbol, end))
        if chosen is not None:
            pending[bar.symbol] = chosen
        next_end = ordered[i + 1].start_ns + ordered[i + 1].bar_seconds * NS if i + 1 < len(ordered) else None
        if next_end != end:  # every symbol's bar ending now is in: mark to market
            marked = math.fsum(held[s] * last_close[s] for s in held if s in last_close)
            result.curve.append((end, cash + marked))
    return result


def _fill(
    result: BacktestResult, held: dict[str, int], bar: Bar, want: TargetPosition, model: FillModel
) -> float:
    """Trade toward `want` at this bar's open; returns the cash it cost (negative when it raised cash)."""
    # toward zero, like the executor: a target never exceeds its notional
    shares = int(want.weight * model.notional / want.price) if want.price > 0 else 0
    quantity = shares - held[bar.symbol]
    if quantity == 0:
        return 0.0
    slip = model.slippage_bps / 1e4
    price = bar.open * (1 + slip if quantity > 0 else 1 - slip)
    commission = max(model.min_commission, model.commission_per_share * abs(quantity))
    held[bar.symbol] = shares
    result.trades.append(Trade(bar.start_ns, bar.symbol, quantity, price, commission, want.reason))
    return quantity * price + commission
