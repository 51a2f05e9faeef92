"""Backtest a strategy with the live code: bars -> validation -> features -> strategy -> fills -> report.

usage: bin/backtest BARS.csv|BARS.parquet [options]        replay a bar file
       bin/backtest --from-bridge --days 5 [options]       history through the running bridge, cached in var/data/

Bar files hold symbol,time,open,high,low,close,volume (time = bar start: ISO 8601, epoch, or parquet timestamp).
Fill model: a target decided at a bar's close is sized like the executor (weight * notional / close, toward 0)
and filled at that symbol's next bar open, moved against us by --slippage-bps, paying --commission per share
(at least --min-commission). Protective stops as live (STOP_LOSS_PERCENT / TRAILING_STOP_PERCENT, per symbol):
one per position, triggered on a bar's range at the trigger, or at the open when the bar gaps through it.
Prints the trades, P&L, maximum drawdown, Sharpe ratio; writes an equity-curve PNG.
Files it writes (the PNG, the history cache) are private (0600; 0640 with FILE_GROUP), like the stack's.
Exit codes: 0 done, 2 usage, 65 bad or unreadable bar file or no data, 69 bridge unavailable, 73 the PNG cannot
be written, 78 bad setting or strategy parameter.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from tqdm import tqdm

from procs.features.bars import history_bar_size
from procs.strategy.barfile import BarFileError, load_bar_file, write_bar_file
from procs.strategy.fills import FillModel, simulate
from procs.strategy.registry import build_strategy
from procs.strategy.replay import replay
from procs.strategy.report import summary_lines, trade_lines, write_equity_png
from shared.bus import RequestTimeout, req_endpoint, request_once
from shared.cli import Parser, count, free_text, positive, printable, zero_or_more
from shared.config import ConfigError, Settings, file_umask, load_settings
from shared.messages import Bar, FeatureVector, HistoryRequest

EX_DATAERR, EX_UNAVAILABLE, EX_CANTCREAT, EX_CONFIG = 65, 69, 73, 78
BIG_RUN = 50_000  # vectors: show a progress bar beyond this


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = Parser(prog="backtest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", type=Path, help="bar file (.csv or .parquet)")
    p.add_argument("--from-bridge", action="store_true", help="fetch history through the bridge (cached)")
    p.add_argument(
        "--symbols",
        type=free_text,
        help="comma-separated symbols (default: SYMBOLS, or every symbol in the file)",
    )
    p.add_argument("--days", type=positive, default=5.0, help="days of history to fetch with --from-bridge")
    p.add_argument("--refresh", action="store_true", help="fetch again even when the history is cached")
    p.add_argument("--strategy", type=free_text, help="strategy name (default: STRATEGY)")
    p.add_argument("--params", type=free_text, help="strategy parameters k=v,k=v (default: STRATEGY_PARAMS)")
    p.add_argument("--bar-seconds", type=count, help="bar size to trade on (default: BAR_SECONDS)")
    p.add_argument(
        "--notional", type=positive, help="dollars per unit of weight (default: POSITION_NOTIONAL)"
    )
    p.add_argument("--slippage-bps", type=zero_or_more, help="default: LOCAL_SLIPPAGE_BPS")
    p.add_argument("--commission", type=zero_or_more, help="per share (default: LOCAL_COMMISSION_PER_SHARE)")
    p.add_argument("--min-commission", type=zero_or_more, default=1.0, help="per trade (default 1.00)")
    p.add_argument(
        "--png", type=Path, help="equity-curve PNG (default: var/data/backtest/equity-<strategy>.png)"
    )
    p.add_argument("--trades", type=count, default=20, help="how many of the last trades to print (0 = all)")
    args = p.parse_args(argv)
    if (args.file is None) == (not args.from_bridge):
        p.error("give either a bar file or --from-bridge")
    if args.days * 86_400 > 2**40:
        p.error(f"--days {args.days:g} is more history than there is")
    return args


class Refused(Exception):
    """One line for the user, and the exit code."""

    def __init__(self, line: str, code: int) -> None:
        super().__init__(line)
        self.code = code


def fetch_history(
    settings: Settings, symbols: list[str], bar_seconds: int, days: float, refresh: bool
) -> list[Bar]:
    """Each symbol's history through the bridge, one request per symbol, cached as parquet under var/data/."""
    size = history_bar_size(bar_seconds)
    today = datetime.now(tz=UTC).strftime("%Y%m%d")
    bars: list[Bar] = []
    for symbol in tqdm(symbols, desc="history", unit="symbol", disable=None):
        cached = settings.data_dir / "history" / f"{symbol}-{size}s-{days:g}d-{today}.parquet"
        if cached.exists() and not refresh:
            bars.extend(load_bar_file(cached, size))
            continue
        request = HistoryRequest(symbol=symbol, bar_seconds=size, duration_seconds=int(days * 86_400))
        endpoint = req_endpoint(settings, "bridge")
        if not Path(endpoint.removeprefix("ipc://")).exists():
            raise Refused(
                f"backtest: the bridge is not running (no {endpoint}); start the stack", EX_UNAVAILABLE
            )
        try:
            reply = request_once(endpoint, request, timeout=120.0)
        except RequestTimeout as exc:
            raise Refused(
                f"backtest: the bridge did not answer ({exc}); is the stack running?", EX_UNAVAILABLE
            ) from None
        if not reply.ok:
            raise Refused(
                f"backtest: history for {symbol} refused by the bridge: {reply.error}", EX_UNAVAILABLE
            )
        got = msgspec.convert(reply.result, type=list[Bar])
        if got:
            write_bar_file(cached, got)
            bars.extend(load_bar_file(cached, size))
    bars.sort(key=lambda b: (b.start_ns, b.symbol))
    return bars


def load_bars(args: argparse.Namespace, settings: Settings, bar_seconds: int) -> list[Bar]:
    wanted = [s.strip().upper() for s in args.symbols.split(",")] if args.symbols else None
    try:
        if args.from_bridge:
            bars = fetch_history(
                settings, wanted or list(settings.symbols), bar_seconds, args.days, args.refresh
            )
        else:
            bars = load_bar_file(args.file, bar_seconds)
    except BarFileError as exc:
        raise Refused(f"backtest: {exc}", EX_DATAERR) from None
    except (OSError, ValueError) as exc:  # a name the file system refuses (too long, not a directory)
        raise Refused(f"backtest: cannot read {args.file or 'the history'}: {exc}", EX_DATAERR) from None
    if wanted:
        bars = [b for b in bars if b.symbol in wanted]
    if not bars:
        raise Refused("backtest: no bars to replay (check --symbols and the file)", EX_DATAERR)
    size = bars[0].bar_seconds
    if size > bar_seconds or bar_seconds % size:
        where = args.file or "the history"
        raise Refused(
            f"backtest: {where} holds {size}s bars; {bar_seconds}s bars cannot be built from them "
            f"(pass --bar-seconds {size} or a multiple of it)",
            EX_DATAERR,
        )
    return bars


def progress(vectors: Iterable[FeatureVector], total: int) -> Iterable[FeatureVector]:
    """A progress bar on long replays (on a terminal only)."""
    bar: Iterable[FeatureVector] = tqdm(
        vectors, total=total, desc="replay", unit="bar", disable=None if total > BIG_RUN else True
    )
    return bar


def stops_of(settings: Settings, symbols: set[str]) -> dict[str, tuple[str, float]]:
    """Each symbol's protective stop as the live executor would hold it (none configured: empty)."""
    out: dict[str, tuple[str, float]] = {}
    for symbol in sorted(symbols):
        spec = settings.stop_for(symbol)
        if spec is not None:
            out[symbol] = (spec[0], float(spec[1]))
    return out


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        strategy = build_strategy(
            args.strategy or settings.strategy,
            args.params if args.params is not None else settings.strategy_params,
        )
    except ConfigError as exc:
        raise Refused(f"backtest: {exc}", EX_CONFIG) from None
    os.umask(file_umask(settings))
    bar_seconds = args.bar_seconds or settings.bar_seconds
    bars = load_bars(args, settings, bar_seconds)
    replayed = replay(
        bars, strategy, bar_seconds=bar_seconds, spike_sigmas=settings.spike_sigmas, progress=progress
    )
    model = FillModel(
        notional=args.notional or float(settings.position_notional),
        slippage_bps=args.slippage_bps
        if args.slippage_bps is not None
        else float(settings.local_slippage_bps),
        commission_per_share=args.commission
        if args.commission is not None
        else float(settings.local_commission_per_share),
        min_commission=args.min_commission,
        stops=stops_of(settings, {b.symbol for b in bars}),
    )
    result = simulate(replayed.bars, replayed.targets, model)
    print("\n".join(trade_lines(result, args.trades)))
    print()
    print("\n".join(summary_lines(replayed, result, model, bar_seconds, strategy.name)))
    png = args.png or settings.data_dir / "backtest" / f"equity-{strategy.name}.png"
    try:
        written = write_equity_png(png, result, f"{strategy.name}: equity")
    except (OSError, ValueError) as exc:
        raise Refused(f"backtest: cannot write the equity curve to {png}: {exc}", EX_CANTCREAT) from None
    print(f"equity curve    {written}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command: argv without the program name (None: this process's own arguments)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        return run(args)
    except Refused as exc:
        print(printable(str(exc)), file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
