"""A backtest's report: the summary a trader reads in the terminal, and the equity-curve PNG.

Formatting only: it never changes a number it is given. matplotlib runs on the Agg backend (no display).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from procs.features.bars import NS
from procs.strategy.fills import BacktestResult, FillModel
from procs.strategy.replay import ReplayResult


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS, tz=UTC).strftime("%Y-%m-%d %H:%M")


def trade_lines(result: BacktestResult, limit: int) -> list[str]:
    """The last `limit` trades (all when limit <= 0), one line each."""
    shown = result.trades if limit <= 0 else result.trades[-limit:]
    lines = [f"{'time (UTC)':16}  {'symbol':6}  {'side':4}  {'qty':>6}  {'price':>10}  {'comm':>6}  reason"]
    for t in shown:
        side = "BUY" if t.quantity > 0 else "SELL"
        lines.append(
            f"{_when(t.time_ns):16}  {t.symbol:6}  {side:4}  {abs(t.quantity):>6}  {t.price:>10.4f}  "
            f"{t.commission:>6.2f}  {t.reason}"
        )
    if limit > 0 and len(result.trades) > limit:
        lines.insert(1, f"... {len(result.trades) - limit} earlier trades not shown (--trades 0 shows all)")
    return lines


def summary_lines(
    replayed: ReplayResult, result: BacktestResult, model: FillModel, bar_seconds: int, strategy: str
) -> list[str]:
    """The headline numbers: what was replayed, P&L, maximum drawdown, Sharpe ratio."""
    bars = replayed.bars
    symbols = sorted({b.symbol for b in bars})
    first, last = (bars[0].start_ns, bars[-1].start_ns) if bars else (0, 0)
    dd, dd_frac = result.max_drawdown()
    rejects = ", ".join(f"{k} {v}" for k, v in sorted(replayed.rejects.items()) if v) or "none"
    ret = result.pnl / result.initial_equity
    return [
        f"strategy        {strategy}",
        f"bars            {len(bars)} x {bar_seconds}s, {len(symbols)} symbols ({', '.join(symbols)})",
        f"period (UTC)    {_when(first)} .. {_when(last)}" if bars else "period          none",
        f"rejected bars   {rejects}",
        f"vectors         {replayed.counters.get('vectors', 0)} ({replayed.counters.get('cold', 0)} cold), "
        f"targets {len(replayed.targets)}, strategy errors {len(replayed.errors)}",
        f"fill model      next bar open, slippage {model.slippage_bps:g} bp, "
        f"commission {model.commission_per_share:g}/share (min {model.min_commission:g}), "
        f"{model.notional:,.0f} per unit weight",
        f"trades          {len(result.trades)}, commissions {result.commissions:,.2f}",
        f"P&L             {result.pnl:+,.2f} ({ret:+.2%} of {result.initial_equity:,.0f})",
        f"max drawdown    {dd:,.2f} ({dd_frac:.2%})",
        f"Sharpe ratio    {result.sharpe(bar_seconds):.2f} (annualised, per-bar returns)",
    ]


def write_equity_png(path: Path, result: BacktestResult, title: str) -> Path:
    """The equity curve and its drawdown, as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [datetime.fromtimestamp(t / NS, tz=UTC) for t, _ in result.curve]
    equity = [e for _, e in result.curve]
    peak, drawdown = result.initial_equity, []
    for e in equity:
        peak = max(peak, e)
        drawdown.append(e - peak)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=(3, 1))
    top.plot(times, equity, linewidth=1.0)
    top.axhline(result.initial_equity, color="grey", linewidth=0.5)
    top.set_title(title)
    top.set_ylabel("equity")
    bottom.fill_between(times, drawdown, 0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown")
    fig.autofmt_xdate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
