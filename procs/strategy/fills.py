"""The backtest's fill model and accounting: targets -> trades -> equity curve -> P&L, drawdown, Sharpe.

Fill model (documented in bin/backtest --help): a target decided at a bar's close is sized like the executor
does (shares = round(weight * notional / that close)) and filled at the symbol's NEXT bar open, moved against
us by `slippage_bps`, paying `commission_per_share` (at least `min_commission` per trade). A target on a
symbol's last bar is never filled. Equity is marked at every bar close. Pure: it never reads files or clocks.

Protective stops (`FillModel.stops`, from STOP_LOSS_PERCENT / TRAILING_STOP_PERCENT) are modelled as the live
executor holds them at the broker: a position gets one stop when it opens (STP: percent beyond the average cost,
on the cent, as procs/executor/stops.py prices it; TRAIL: percent from the entry, then following each bar's best
price, never back); a resize keeps its trigger. A bar that opens beyond the trigger fills it at the open (a gap),
else a bar whose range reaches it fills at the trigger; either way moved against us by the slippage. A target
decided before a stop filled is not re-entered: the strategy's next bar decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from procs.executor.stops import stop_price
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
    # symbol -> ("STP" | "TRAIL", percent); the key "" stands for every other symbol. Empty: no stops
    stops: dict[str, tuple[str, float]] = field(default_factory=dict)
    tick: float = 0.01  # a stop's trigger is on this price increment

    def stop_for(self, symbol: str) -> tuple[str, float] | None:
        return self.stops.get(symbol) or self.stops.get("")


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
    guard = Protection(model)
    for i, bar in enumerate(ordered):
        want = pending.pop(bar.symbol, None)
        if guard.gapped(bar, held[bar.symbol]):
            cash -= guard.fill(result, held, bar, at_open=True)
            want = None  # decided before the stop filled: not re-entered, the next bar's target decides
        if want is not None:
            before = held[bar.symbol]
            cash -= _fill(result, held, bar, want, model)
            if held[bar.symbol] != before:
                guard.traded(bar.symbol, before, held[bar.symbol], result.trades[-1].price, bar.open)
        if guard.reached(bar, held[bar.symbol]):
            cash -= guard.fill(result, held, bar, at_open=False)
        guard.trail(bar, held[bar.symbol])
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


@dataclass
class Stop:
    kind: str  # STP | TRAIL
    percent: float
    long: bool
    trigger: float


class Protection:
    """Each position's protective stop in the backtest: created when it opens, kept (trigger and all) when it is
    resized, gone when it is closed or filled."""

    def __init__(self, model: FillModel) -> None:
        self.model = model
        self.avg_cost: dict[str, float] = {}
        self.stops: dict[str, Stop] = {}

    def traded(self, symbol: str, before: int, after: int, price: float, reference: float) -> None:
        """A fill took the position from `before` to `after` at `price` (`reference`: the market price then)."""
        spec = self.model.stop_for(symbol)
        if after == 0 or spec is None:
            self.stops.pop(symbol, None)
            self.avg_cost.pop(symbol, None)
            return
        if before == 0 or (before > 0) != (after > 0):
            self.avg_cost[symbol] = price
            self.stops.pop(symbol, None)  # flipped: the old side's stop is cancelled, a new one placed
        elif abs(after) > abs(before):  # an add averages in; a reduction leaves the cost (and the stop) alone
            added = abs(after) - abs(before)
            self.avg_cost[symbol] = (self.avg_cost[symbol] * abs(before) + price * added) / abs(after)
        if symbol in self.stops:
            return  # resized at the broker, never re-priced
        kind, percent = spec
        long = after > 0
        pct, tick = Decimal(str(percent)), Decimal(str(self.model.tick))
        if kind == "TRAIL":  # the broker trails from the price when it is placed
            trigger = _on_tick(Decimal(str(reference)) * (100 - pct if long else 100 + pct) / 100, tick, long)
        else:
            trigger = stop_price("STP", pct, Decimal(str(self.avg_cost[symbol])), long, tick)
        self.stops[symbol] = Stop(kind, percent, long, float(trigger))

    def gapped(self, bar: Bar, position: int) -> bool:
        stop = self.stops.get(bar.symbol)
        if stop is None or position == 0:
            return False
        return bar.open <= stop.trigger if stop.long else bar.open >= stop.trigger

    def reached(self, bar: Bar, position: int) -> bool:
        stop = self.stops.get(bar.symbol)
        if stop is None or position == 0:
            return False
        return bar.low <= stop.trigger if stop.long else bar.high >= stop.trigger

    def fill(self, result: BacktestResult, held: dict[str, int], bar: Bar, *, at_open: bool) -> float:
        """The stop fills all the position: at the open on a gap, else at its trigger; returns the cash it cost."""
        stop = self.stops.pop(bar.symbol)
        self.avg_cost.pop(bar.symbol, None)
        quantity = -held[bar.symbol]
        slip = self.model.slippage_bps / 1e4
        base = bar.open if at_open else stop.trigger
        price = base * (1 + slip if quantity > 0 else 1 - slip)
        commission = max(self.model.min_commission, self.model.commission_per_share * abs(quantity))
        held[bar.symbol] = 0
        what = f"{stop.kind} {stop.trigger:g}" + (
            f" (trail {stop.percent:g}%)" if stop.kind == "TRAIL" else ""
        )
        reason = f"protective stop {what}" + (": gap at the open" if at_open else "")
        result.trades.append(Trade(bar.start_ns, bar.symbol, quantity, price, commission, reason))
        return quantity * price + commission

    def trail(self, bar: Bar, position: int) -> None:
        """A TRAIL's trigger follows the bar's best price, only ever in the position's favour."""
        stop = self.stops.get(bar.symbol)
        if stop is None or stop.kind != "TRAIL" or position == 0:
            return
        pct, tick = Decimal(str(stop.percent)), Decimal(str(self.model.tick))
        if stop.long:
            moved = float(_on_tick(Decimal(str(bar.high)) * (100 - pct) / 100, tick, True))
            stop.trigger = max(stop.trigger, moved)
        else:
            moved = float(_on_tick(Decimal(str(bar.low)) * (100 + pct) / 100, tick, False))
            stop.trigger = min(stop.trigger, moved)


def _on_tick(price: Decimal, tick: Decimal, long: bool) -> Decimal:
    """On the tick, never nearer the market: down for a long's (sell) stop, up for a short's."""
    return (price / tick).to_integral_value(ROUND_FLOOR if long else ROUND_CEILING) * tick
