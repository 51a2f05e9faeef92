"""STRATEGY and STRATEGY_PARAMS: the right strategy with typed parameters, or one line and exit 78."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from procs.strategy.meanrev import MeanReversion
from procs.strategy.registry import build_strategy, parse_params
from procs.strategy.trend import TrendFollower
from shared.config import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_default_is_the_trend_follower_with_its_defaults() -> None:
    assert build_strategy("trend") == TrendFollower()


def test_parameters_are_typed_from_the_strategy() -> None:
    got = build_strategy("meanrev", "entry_z=1.5, allow_short=false,WEIGHT=0.5")
    assert got == MeanReversion(entry_z=1.5, allow_short=False, weight=0.5)


def test_params_text_splits_into_pairs() -> None:
    assert parse_params(" a=1 ,, b = x ") == {"a": "1", "b": "x"}


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("moonshot", "", "setting STRATEGY: unknown strategy 'moonshot'; choose one of hold, meanrev, trend"),
        ("trend", "fast=10", "setting STRATEGY_PARAMS: trend has no parameter 'fast'"),
        ("trend", "weight=lots", "setting STRATEGY_PARAMS: trend parameter weight='lots' must be a number"),
        (
            "trend",
            "confirm=maybe",
            "setting STRATEGY_PARAMS: trend parameter confirm='maybe' must be true or false",
        ),
        ("trend", "weight=2", "setting STRATEGY_PARAMS: trend weight must be in (0, 1] (got 2)"),
        ("meanrev", "entry_z", "setting STRATEGY_PARAMS: 'entry_z' is not key=value"),
    ],
)
def test_a_bad_name_or_parameter_is_one_config_error_line(name: str, params: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_strategy(name, params)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("env", "named"),
    [({"STRATEGY": "moonshot"}, "STRATEGY"), ({"STRATEGY_PARAMS": "band_bps=-3"}, "STRATEGY_PARAMS")],
)
def test_the_strategy_program_exits_78_with_one_line_on_a_bad_setting(
    short_tmp: Path, env: dict[str, str], named: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STRATEGY", "VAR_DIR"))}
    run = subprocess.run(
        [sys.executable, "-m", "procs.strategy"],
        cwd=REPO,
        env={**clean, "STACK_HOME": str(short_tmp), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 78, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("strategy:")]
    assert len(lines) == 1 and f"setting {named}" in lines[0], run.stderr
    assert "Traceback" not in run.stderr
