"""The strategy registry: STRATEGY picks a strategy by name, STRATEGY_PARAMS ("k=v,k=v") sets its parameters.

A strategy's parameters are its dataclass fields, typed float, int or bool; a strategy whose keys are not fixed
(hold: one key per symbol) parses them itself in a `from_params(params, symbols)` class method. An unknown name,
an unknown key or a bad value raises ConfigError with one line naming the setting (the program then exits 78);
it must never guess a value or silently ignore a key.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Collection
from typing import Any

from procs.strategy.base import Strategy
from procs.strategy.hold import Hold
from procs.strategy.meanrev import MeanReversion
from procs.strategy.trend import TrendFollower
from shared.config import ConfigError, load_settings

STRATEGIES: dict[str, type[Any]] = {cls.name: cls for cls in (TrendFollower, MeanReversion, Hold)}
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_params(text: str) -> dict[str, str]:
    """'fast=10, slow=30' -> {'fast': '10', 'slow': '30'}; ConfigError on an item without '='."""
    params: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"setting STRATEGY_PARAMS: {item!r} is not key=value (e.g. weight=0.5,band_bps=2)"
            )
        params[key.strip().lower()] = value.strip()
    return params


def _convert(strategy: str, key: str, raw: str, kind: Any) -> Any:
    try:
        if kind is bool:
            if raw.lower() not in _TRUE | _FALSE:
                raise ValueError
            return raw.lower() in _TRUE
        return kind(raw)
    except ValueError:
        what = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, str(kind))
        raise ConfigError(
            f"setting STRATEGY_PARAMS: {strategy} parameter {key}={raw!r} must be {what}"
        ) from None


def param_types(cls: type[Any]) -> dict[str, Any]:
    """A strategy class's parameters and their types."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def traded_symbols() -> tuple[str, ...]:
    """The SYMBOLS setting, for a strategy whose parameters name symbols when the caller did not pass them."""
    return tuple(load_settings().symbols)


def build_strategy(name: str, params_text: str = "", symbols: Collection[str] | None = None) -> Strategy:
    """The configured strategy; ConfigError (one line) for an unknown name, key or bad value.

    `symbols`: the traded symbols (SYMBOLS), which a strategy keyed by symbol (hold) checks its keys against;
    None reads the SYMBOLS setting, and only for such a strategy.
    """
    cls = STRATEGIES.get(name.strip().lower())
    if cls is None:
        known = ", ".join(sorted(STRATEGIES))
        raise ConfigError(f"setting STRATEGY: unknown strategy {name!r}; choose one of {known}")
    if hasattr(cls, "from_params"):
        built: Strategy = cls.from_params(
            parse_params(params_text), traded_symbols() if symbols is None else symbols
        )
        return built
    types = param_types(cls)
    kwargs = {}
    for key, raw in parse_params(params_text).items():
        if key not in types:
            known = ", ".join(types) or "none"
            raise ConfigError(
                f"setting STRATEGY_PARAMS: {cls.name} has no parameter {key!r} (it has {known})"
            )
        kwargs[key] = _convert(cls.name, key, raw, types[key])
    try:
        strategy: Strategy = cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"setting STRATEGY_PARAMS: {cls.name} {exc}") from None
    return strategy
