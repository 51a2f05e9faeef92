"""The settings schema: one typed source of truth, one-line errors naming the key (a typo in .env too), accounts
masked, .env private."""

from __future__ import annotations

import ast
import grp
import os
import re
from pathlib import Path

import pytest

from shared.config import (
    ConfigError,
    check_env_file_private,
    default_values,
    file_umask,
    load_settings,
    mask_account,
    mask_secrets,
)

REPO = Path(__file__).resolve().parents[2]


def _example() -> dict[str, str]:
    out = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_env_example_lists_exactly_the_schema_with_its_defaults() -> None:
    assert _example() == default_values()


def test_every_setting_in_env_example_has_a_line_of_meaning() -> None:
    lines = (REPO / ".env.example").read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[i - 1].startswith("# "), f"{line} has no comment above it"


def test_defaults_load_as_a_paper_account_on_the_simulator(stack_env: Path) -> None:
    s = load_settings()
    assert s.gateway == "sim" and s.trading_mode == "paper"
    assert s.ib_port not in (4001, 4002, 7496, 7497)
    assert s.run_dir == stack_env / "var" / "run"


def test_env_file_is_read_and_environment_wins(stack_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (stack_env / ".env").write_text("SYMBOLS=aapl, msft\nIB_CLIENT_ID=7\n")
    monkeypatch.setenv("IB_CLIENT_ID", "9")
    s = load_settings()
    assert s.symbols == ("AAPL", "MSFT")
    assert s.ib_client_id == 9


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"IB_PORT": "forty"}, "IB_PORT"),
        ({"GATEWAY": "tws"}, "GATEWAY"),
        ({"SYMBOLS": "AAPL,$$$"}, "SYMBOLS"),
        ({"BRIDGE_MSGS_PER_SECOND": "80"}, "BRIDGE_MSGS_PER_SECOND"),
        ({"IB_PORT": "4002"}, "IB_PORT"),
        ({"GATEWAY": "ib", "IB_PORT": "4001"}, "IB_PORT"),
        ({"GATEWAY": "ib", "IB_PORT": "4002", "IB_ACCOUNT": "U1234567"}, "IB_ACCOUNT"),
        (
            {"GATEWAY": "ib", "IB_PORT": "4001", "TRADING_MODE": "live", "IB_ACCOUNT": "U1234567"},
            "LIVE_TRADING_CONFIRMED",
        ),
        (
            {
                "GATEWAY": "ib",
                "IB_PORT": "4002",
                "TRADING_MODE": "live",
                "LIVE_TRADING_CONFIRMED": "true",
                "IB_ACCOUNT": "U1234567",
            },
            "IB_PORT",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_key(
    stack_env: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], key: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert "\n" not in text
    assert key in text
    assert "1234567" not in text  # account ids stay masked even in errors


def test_live_with_confirmation_on_a_live_port_loads(
    stack_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in {
        "GATEWAY": "ib",
        "IB_PORT": "4001",
        "TRADING_MODE": "live",
        "LIVE_TRADING_CONFIRMED": "true",
        "IB_ACCOUNT": "U7654321",
    }.items():
        monkeypatch.setenv(k, v)
    assert load_settings().trading_mode == "live"


def test_accounts_are_masked_in_free_text() -> None:
    assert mask_account("DU1234567") == "DU****567"
    text = mask_secrets("managed accounts DU1234567,U7654321; order 1234567 qty 100")
    assert "DU1234567" not in text and "U7654321" not in text
    assert "order 1234567" in text  # a bare number is not an account
    assert re.search(r"DU\*+567", text)


# ------------------------------------------------------------------ typos, private .env, FILE_GROUP


def test_a_key_in_env_the_schema_does_not_know_names_it_and_the_nearest_known_key(stack_env: Path) -> None:
    (stack_env / ".env").write_text("SYMBOLS=AAPL\nDAILY_LOSS_LIMT=10\n")
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert "\n" not in text and "DAILY_LOSS_LIMT" in text and "did you mean DAILY_LOSS_LIMIT?" in text


def test_a_key_in_env_like_nothing_known_points_at_env_example(stack_env: Path) -> None:
    (stack_env / ".env").write_text("zzz_qqq=1\n")
    with pytest.raises(ConfigError, match=r"zzz_qqq .*\.env\.example"):
        load_settings()


def test_keys_in_env_are_matched_without_regard_to_case(stack_env: Path) -> None:
    (stack_env / ".env").write_text("daily_loss_limit=10\n")
    assert load_settings().daily_loss_limit == 10


def test_unknown_process_environment_variables_stay_ignored(
    stack_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAILY_LOSS_LIMT", "10")
    assert load_settings().daily_loss_limit == 5000


def test_an_env_file_open_to_other_users_is_refused_with_the_remedy(stack_env: Path) -> None:
    env = stack_env / ".env"
    env.write_text("SYMBOLS=AAPL\n")
    for mode in (0o644, 0o640, 0o604, 0o620):
        env.chmod(mode)
        with pytest.raises(ConfigError, match=f"chmod 600 {env}"):
            check_env_file_private()
    env.chmod(0o600)
    check_env_file_private()
    env.unlink()
    check_env_file_private()  # no .env at all: defaults, nothing to protect


def test_file_group_must_exist_and_widens_the_umask_to_the_group(
    stack_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert file_umask(load_settings()) == 0o077
    monkeypatch.setenv("FILE_GROUP", "no-such-group-here")
    with pytest.raises(ConfigError, match="FILE_GROUP"):
        load_settings()
    monkeypatch.setenv("FILE_GROUP", grp.getgrgid(os.getgid()).gr_name)
    assert file_umask(load_settings()) == 0o027


def _names_imported_from_shared_config() -> set[str]:
    """Every name a module of the repository imports from shared.config, read with ast (nothing is imported)."""
    names: set[str] = set()
    for folder in ("procs", "shared", "tests", "bench", "bin"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.ImportFrom) and node.module == "shared.config":
                    names.update(alias.name for alias in node.names)
    return names


def test_every_name_the_stack_imports_from_shared_config_is_there() -> None:
    # the settings are split into shared/env_file.py, config_values.py and masking.py; programs still import
    # every settings name from shared.config, so a name that moves without staying here breaks a program
    import shared.config

    wanted = _names_imported_from_shared_config()
    assert {"Settings", "load_settings", "ConfigError", "mask_account"} <= wanted
    # in __all__ too: mypy --strict refuses a name a module only happens to import
    missing = sorted(n for n in wanted if not hasattr(shared.config, n) or n not in shared.config.__all__)
    assert not missing, f"imported from shared.config but not there: {missing}"
