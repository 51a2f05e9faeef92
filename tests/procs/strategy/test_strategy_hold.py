"""STRATEGY=hold: fixed weights from STRATEGY_PARAMS on every bar of every symbol, others flat; bad params exit 78."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from procs.features.featureset import FEATURES
from procs.features.synthetic import random_walk_bars
from procs.strategy.barfile import write_bar_file
from procs.strategy.hold import Hold
from procs.strategy.registry import build_strategy
from procs.strategy.replay import replay
from shared.bus import Subscriber, new_context, pub_endpoint
from shared.config import ConfigError
from shared.messages import FeatureVector, TargetPosition
from tests.support.stack import running_stack

REPO = Path(__file__).resolve().parents[3]
SYMBOLS = ("AAPL", "MSFT", "SPY")


def _vector(symbol: str, warm: bool = True, close: float = 100.0) -> FeatureVector:
    values = dict.fromkeys(FEATURES, float("nan"))  # hold reads no feature: none is there
    return FeatureVector(symbol=symbol, end_ns=7, bar_seconds=60, close=close, warm=warm, values=values)


def test_named_symbols_hold_their_weight_and_the_others_are_flat() -> None:
    hold = build_strategy("hold", "aapl=0.5, MSFT=-0.2", symbols=SYMBOLS)
    assert hold == Hold((("AAPL", 0.5), ("MSFT", -0.2)))
    got = {s: hold.decide(_vector(s)) for s in SYMBOLS}
    assert {s: t.weight for s, t in got.items() if t} == {"AAPL": 0.5, "MSFT": -0.2, "SPY": 0.0}
    assert got["AAPL"] is not None and got["AAPL"].reason == "hold 0.5 of POSITION_NOTIONAL (long)"
    assert got["MSFT"] is not None and "hold -0.2 of POSITION_NOTIONAL (short)" == got["MSFT"].reason
    assert got["SPY"] is not None and got["SPY"].reason == "hold flat (SPY not named in STRATEGY_PARAMS)"
    for t in got.values():
        assert t is not None and t.strategy == "hold" and t.feature_end_ns == 7 and t.price == 100.0


def test_every_bar_gets_the_same_target_and_a_cold_bar_is_as_good_as_a_warm_one() -> None:
    hold = build_strategy("hold", "AAPL=1,MSFT=-1,SPY=0", symbols=SYMBOLS)
    assert isinstance(hold, Hold) and hold.needs_warmup is False
    weights = [hold.decide(_vector(s, warm=w)).weight for w in (False, True) for s in SYMBOLS]
    assert weights == [1.0, -1.0, 0.0] * 2
    named_flat = hold.decide(_vector("SPY"))
    assert named_flat.reason == "hold flat"


def test_the_runner_trades_hold_on_cold_vectors_and_other_strategies_wait_for_warm_up() -> None:
    from procs.strategy.base import StrategyRunner

    runner = StrategyRunner(build_strategy("hold", "AAPL=0.5", symbols=SYMBOLS))
    target = runner.on_vector(_vector("AAPL", warm=False))
    assert target is not None and target.weight == 0.5 and runner.counters["cold"] == 0
    trend = StrategyRunner(build_strategy("trend"))
    assert trend.on_vector(_vector("AAPL", warm=False)) is None and trend.counters["cold"] == 1


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ("AAPL=1.5", "weight AAPL='1.5' must be between -1 and 1"),
        ("MSFT=-1.01", "weight MSFT='-1.01' must be between -1 and 1"),
        ("AAPL=half", "weight AAPL='half' is not a number"),
        ("AAPL=nan", "weight AAPL='nan' must be between -1 and 1"),
        ("AAPL=inf", "weight AAPL='inf' must be between -1 and 1"),
        ("TSLA=0.5", "symbol TSLA is not in SYMBOLS (AAPL,MSFT,SPY)"),
        ("AAPL", "'AAPL' is not key=value"),
    ],
)
def test_a_bad_weight_or_symbol_is_one_config_error_line_naming_strategy_params(
    params: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as err:
        build_strategy("hold", params, symbols=SYMBOLS)
    text = str(err.value)
    assert text.startswith("setting STRATEGY_PARAMS: ") and problem in text and "\n" not in text


def test_without_symbols_given_hold_checks_against_the_symbols_setting(
    stack_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYMBOLS", "AAPL,MSFT")
    assert build_strategy("hold", "MSFT=0.3") == Hold((("MSFT", 0.3),))
    with pytest.raises(ConfigError, match="symbol SPY is not in SYMBOLS"):
        build_strategy("hold", "SPY=0.3")


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STRATEGY", "VAR_DIR", "SYMBOLS"))}
    return {**clean, "STACK_HOME": str(home), **extra}


@pytest.mark.parametrize("params", ["AAPL=2", "NVDA=0.5"])
def test_the_strategy_program_exits_78_with_one_line_on_bad_hold_params(short_tmp: Path, params: str) -> None:
    env = _clean_env(short_tmp, STRATEGY="hold", STRATEGY_PARAMS=params, SYMBOLS="AAPL,MSFT")
    run = subprocess.run(
        [sys.executable, "-m", "procs.strategy"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 78, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("strategy:")]
    assert len(lines) == 1 and "setting STRATEGY_PARAMS: hold" in lines[0], run.stderr
    assert "Traceback" not in run.stderr


def test_replay_runs_hold_with_the_same_code() -> None:
    bars = random_walk_bars("AAA", 200, seed=1) + random_walk_bars("BBB", 200, seed=2, price=40.0)
    bars.sort(key=lambda b: (b.start_ns, b.symbol))
    hold = build_strategy("hold", "AAA=0.5", symbols=("AAA", "BBB"))
    result = replay(bars, hold, bar_seconds=60)
    assert result.targets, result.counters
    assert {(t.symbol, t.weight) for t in result.targets} == {("AAA", 0.5), ("BBB", 0.0)}


def test_backtest_accepts_hold(short_tmp: Path) -> None:
    bars = random_walk_bars("AAA", 300, seed=1, vol=2e-3) + random_walk_bars("BBB", 300, seed=2, vol=2e-3)
    bar_file = short_tmp / "bars.parquet"
    write_bar_file(bar_file, bars)
    args = [
        str(bar_file),
        "--strategy",
        "hold",
        "--params",
        "AAA=0.5,BBB=-0.25",
        "--png",
        str(short_tmp / "e.png"),
    ]
    env = _clean_env(short_tmp, SYMBOLS="AAA,BBB")
    run = subprocess.run(
        [sys.executable, str(REPO / "bin" / "backtest"), *args],
        cwd=short_tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert run.returncode == 0, run.stderr
    assert "BUY" in run.stdout and "SELL" in run.stdout, run.stdout  # long AAA, short BBB
    bad = subprocess.run(
        [
            sys.executable,
            str(REPO / "bin" / "backtest"),
            str(bar_file),
            "--strategy",
            "hold",
            "--params",
            "CCC=1",
        ],
        cwd=short_tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert bad.returncode == 78 and "setting STRATEGY_PARAMS: hold symbol CCC" in bad.stderr, bad.stderr


async def _first_targets(
    strategy_ep: str, symbols: tuple[str, ...], timeout: float
) -> dict[str, TargetPosition]:
    ctx = new_context()
    sub = Subscriber(ctx, [strategy_ep], ["target."])
    got: dict[str, TargetPosition] = {}

    async def collect() -> None:
        while set(got) != set(symbols):
            msg = await sub.recv(timeout=0.5)
            if msg is not None and isinstance(msg.msg, TargetPosition):
                got.setdefault(msg.msg.symbol, msg.msg)

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        pass  # the assertion says what was missing
    finally:
        sub.close()
        ctx.destroy(linger=0)
    return got


def test_a_supervised_hold_strategy_publishes_its_weights_for_every_symbol() -> None:
    env = {"SYMBOLS": "AAPL,MSFT", "WARMUP_BARS": "120", "STRATEGY": "hold", "STRATEGY_PARAMS": "AAPL=0.5"}
    with running_stack(env, programs=("gateway_sim", "bridge", "features", "strategy"), timeout=40) as stack:
        got = asyncio.run(_first_targets(pub_endpoint(stack.settings, "strategy"), ("AAPL", "MSFT"), 40.0))
        assert set(got) == {"AAPL", "MSFT"}, stack.log("strategy")[-3000:]
        assert (got["AAPL"].weight, got["AAPL"].reason) == (0.5, "hold 0.5 of POSITION_NOTIONAL (long)")
        assert (got["MSFT"].weight, got["MSFT"].strategy) == (0.0, "hold")
        assert got["AAPL"].price is not None and got["AAPL"].price > 0
