"""The one settings schema of the stack, read from the environment and `.env`.

Every program loads its settings here and nowhere else. A bad value, or a key in `.env` the schema does not
know (a typo would otherwise silently leave a limit at its default), raises ConfigError with one line naming
the key and what to do; callers exit 78 (EX_CONFIG). Account ids never leave here unmasked.

Its parts: the .env file itself (where, unknown keys, private) is shared/env_file.py; settings that are more than
one value (symbol lists, budgets, stop percents) and the paper/live cross-check, shared/config_values.py; masking
account ids, shared/masking.py.
"""

from __future__ import annotations

import grp
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.config_values import (
    PAPER_ACCOUNT_PREFIXES,
    SUPERVISED_PROGRAMS,
    check_identity,
    check_stops,
    check_tickers,
    parse_heartbeat_budgets,
    parse_stop_percents,
    split_csv,
)
from shared.env_file import (
    REPO_ROOT,
    ConfigError,
    check_env_file_private,
    env_file_path,
    refuse_unknown_keys,
    stack_home,
)
from shared.masking import mask_account, mask_secrets

# Every program imports these from here (one place to get settings from); most live in the modules above.
__all__ = [
    "PAPER_ACCOUNT_PREFIXES",
    "REPO_ROOT",
    "SUPERVISED_PROGRAMS",
    "ConfigError",
    "Settings",
    "check_env_file_private",
    "default_values",
    "file_umask",
    "load_settings",
    "mask_account",
    "mask_secrets",
]


class Settings(BaseSettings):
    """Every setting of the stack; `.env.example` lists each one with its default."""

    model_config = SettingsConfigDict(
        extra="ignore", frozen=True, case_sensitive=False, env_file_encoding="utf-8"
    )

    # -- the Gateway and the API session
    gateway: Literal["sim", "ib"] = "sim"
    ib_host: str = "127.0.0.1"
    ib_port: int = Field(14002, ge=1, le=65535)
    ib_client_id: int = Field(1, ge=0, le=2**31 - 1)
    ib_account: str = "DU1234567"
    ib_connect_timeout: float = Field(30.0, gt=0)
    ib_readonly: bool = False
    trading_mode: Literal["paper", "live"] = "paper"
    live_trading_confirmed: bool = False
    execution: Literal["broker", "local"] = "broker"
    symbols: Annotated[tuple[str, ...], NoDecode] = ("AAPL", "MSFT", "SPY", "QQQ", "NVDA")

    # -- bridge
    bridge_heartbeat_seconds: float = Field(5.0, gt=0)
    bridge_heartbeat_timeout: float = Field(10.0, gt=0)
    # ib_async's own default; held over a 1.05 s window, so any second of IB's sees at most 45 of its 50
    bridge_msgs_per_second: float = Field(45.0, gt=0, le=50)
    reconnect_backoff_max: float = Field(30.0, gt=0)
    reconnect_max_failures: int = Field(10, ge=1)
    waiting_retry_seconds: float = Field(300.0, gt=0)

    # -- features and strategy
    bar_seconds: int = Field(60, ge=5)
    warmup_bars: int = Field(300, ge=0)
    spike_sigmas: float = Field(8.0, gt=0)
    strategy: str = "trend"
    strategy_params: str = ""

    # -- executor: sizing and risk
    position_notional: Decimal = Field(Decimal("10000"), gt=0)
    max_position_shares: int = Field(1000, ge=0)
    max_position_notional: Decimal = Field(Decimal("50000"), ge=0)
    max_order_notional: Decimal = Field(Decimal("25000"), ge=0)
    max_gross_exposure: Decimal = Field(Decimal("200000"), ge=0)
    max_open_positions: int = Field(10, ge=0)
    daily_loss_limit: Decimal = Field(Decimal("5000"), gt=0)
    max_orders_per_minute: int = Field(30, ge=1)
    price_collar_bps: Decimal = Field(Decimal("50"), gt=0)
    market_hours: Literal["regular", "extended", "always"] = "regular"
    order_type: Literal["LMT", "MKT"] = "LMT"
    order_timeout_seconds: float = Field(120.0, gt=0)
    allow_reduce_only_when_halted: bool = True
    position_tolerance: Decimal = Field(Decimal("0"), ge=0)
    # a market-data farm down: reduce-only orders and flatten priced as a marketable limit from the last quote no
    # older than FARM_DOWN_QUOTE_MAX_AGE seconds (quote), or sent at market (market)
    farm_down_pricing: Literal["quote", "market"] = "quote"
    farm_down_quote_max_age: float = Field(30.0, gt=0)
    local_slippage_bps: Decimal = Field(Decimal("2"), ge=0)
    local_commission_per_share: Decimal = Field(Decimal("0.005"), ge=0)
    circuit_breaker_max_errors: int = Field(5, ge=1)
    reconcile_seconds: float = Field(60.0, gt=0)
    # protective stops held at the broker: "PCT" for every symbol and/or "SYMBOL=PCT" overrides, e.g. "3,NVDA=5";
    # empty = no stops. A symbol named in one kind uses that kind, whatever the other's default says.
    stop_loss_percent: Annotated[tuple[tuple[str, Decimal], ...], NoDecode] = ()
    trailing_stop_percent: Annotated[tuple[tuple[str, Decimal], ...], NoDecode] = ()

    # -- watchdog and heartbeats
    heartbeat_seconds: float = Field(2.0, gt=0)
    heartbeat_budget_seconds: float = Field(20.0, gt=0)
    heartbeat_budgets: Annotated[tuple[tuple[str, float], ...], NoDecode] = ()
    bridge_connect_budget_seconds: float = Field(120.0, gt=0)
    watchdog_scan_seconds: float = Field(5.0, gt=0)
    watchdog_dry_run: bool = False
    watchdog_max_restarts: int = Field(3, ge=1)
    watchdog_restart_window: float = Field(600.0, gt=0)

    # -- monitor: alerts off the box, dead-man's switch, metrics (secrets: never printed, logged or echoed)
    alert_urls: SecretStr = SecretStr("")
    alert_level: Literal["INFO", "WARNING", "CRITICAL"] = "WARNING"
    heartbeat_url: SecretStr = SecretStr("")
    heartbeat_url_seconds: float = Field(60.0, ge=5)
    monitor_port: int = Field(9188, ge=1, le=65535)
    monitor_bind: str = "127.0.0.1"
    dashboard_token: SecretStr = SecretStr("")  # required when MONITOR_BIND is not 127.0.0.1
    dashboard_control: bool = False  # the dashboard's halt button (behind DASHBOARD_TOKEN)

    # -- gateway simulator (GATEWAY=sim)
    sim_speed: float = Field(10.0, gt=0)
    sim_seed: int = 42
    sim_cash: Decimal = Field(Decimal("1000000"), gt=0)
    sim_replay_file: str = ""
    sim_start: str = ""
    sim_clock: Literal["session", "wall"] = (
        "session"  # wall: real time at speed 1, the market open while it runs
    )

    # -- logs and files
    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    log_rotation: str = "10 MB"
    log_retention: int = Field(10, ge=1)
    var_dir: str = "var"
    file_group: str = ""

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        return split_csv(value)

    @field_validator("symbols")
    @classmethod
    def _symbols_look_like_tickers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_tickers(value)

    @field_validator("heartbeat_budgets", mode="before")
    @classmethod
    def _parse_budgets(cls, value: Any) -> Any:
        return parse_heartbeat_budgets(value) if isinstance(value, str) else value

    @field_validator("stop_loss_percent", "trailing_stop_percent", mode="before")
    @classmethod
    def _parse_stop_percents(cls, value: Any) -> Any:
        return parse_stop_percents(value) if isinstance(value, str) else value

    def stop_for(self, symbol: str) -> tuple[str, Decimal] | None:
        """The protective stop of `symbol`: ("STP", percent) or ("TRAIL", percent), None without one."""
        fixed, trail = dict(self.stop_loss_percent), dict(self.trailing_stop_percent)
        if symbol in fixed:
            return "STP", fixed[symbol]
        if symbol in trail:
            return "TRAIL", trail[symbol]
        if "" in fixed:
            return "STP", fixed[""]
        if "" in trail:
            return "TRAIL", trail[""]
        return None

    def heartbeat_budget_for(self, program: str) -> float:
        """HEARTBEAT_BUDGETS' value for `program`, else HEARTBEAT_BUDGET_SECONDS."""
        return dict(self.heartbeat_budgets).get(program, self.heartbeat_budget_seconds)

    @field_validator("file_group")
    @classmethod
    def _group_exists(cls, value: str) -> str:
        if value:
            try:
                grp.getgrnam(value)
            except KeyError:
                raise ValueError(
                    f"no group named {value!r} on this machine (empty = files private to you)"
                ) from None
        return value

    @field_validator("log_level", "alert_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _paper_live_consistent(self) -> Settings:
        check_identity(
            self.gateway, self.ib_port, self.trading_mode, self.ib_account, self.live_trading_confirmed
        )
        check_stops(dict(self.stop_loss_percent), dict(self.trailing_stop_percent))
        return self

    # STACK_HOME as it was when these settings were loaded, so paths never move under a running program
    _home: Path = PrivateAttr(default_factory=stack_home)

    # -- derived paths
    @property
    def home(self) -> Path:
        return self._home

    @property
    def var_path(self) -> Path:
        path = Path(self.var_dir)
        return path if path.is_absolute() else self.home / path

    @property
    def run_dir(self) -> Path:
        return self.var_path / "run"

    @property
    def log_dir(self) -> Path:
        return self.var_path / "log"

    @property
    def data_dir(self) -> Path:
        return self.var_path / "data"

    @property
    def masked_account(self) -> str:
        return mask_account(self.ib_account)


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, then `.env`, then defaults; ConfigError (one line) when a value is wrong.

    A key in `.env` that is not a setting is an error; the process environment is not checked (it holds
    everything else the machine sets)."""
    path = env_file if env_file is not None else env_file_path()
    if path.exists():
        refuse_unknown_keys(path, Settings.model_fields)
    try:
        return Settings(_env_file=path if path.exists() else None, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, path)) from None


def file_umask(settings: Settings) -> int:
    """The umask for every file the stack writes: private (0600), or group-readable (0640) with FILE_GROUP."""
    return 0o027 if settings.file_group else 0o077


def _one_line(exc: ValidationError, path: Path) -> str:
    err = exc.errors()[0]
    key = "_".join(str(p) for p in err["loc"]).upper()
    msg = str(err["msg"]).removeprefix("Value error, ")
    given = err.get("input")
    shown = "" if not key or isinstance(given, dict) else f" (got {mask_secrets(str(given))!r})"
    where = f"setting {key}: " if key else "settings: "
    more = f" [+{len(exc.errors()) - 1} more]" if len(exc.errors()) > 1 else ""
    return f"{where}{mask_secrets(msg)}{shown}{more}; fix it in {path} or the environment"


def default_values() -> dict[str, str]:
    """The schema's defaults as they would be written in `.env` (used by the .env.example test)."""
    out: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        value = field.default
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = ",".join(f"{v[0]}={v[1]:g}" if isinstance(v, tuple) else v for v in value)
        else:
            text = str(value)
        out[name.upper()] = text
    return out
