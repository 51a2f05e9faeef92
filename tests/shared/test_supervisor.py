"""supervisord.conf rendered for VAR_DIR: supervisord itself (its own config parser) finds its socket, pid file,
logs and the programs' logs where every client of the stack looks for them, and gives programs the same VAR_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from shared.config import ConfigError, load_settings
from shared.service import prepare_var
from shared.supervisor import supervisor_socket, write_supervisord_config


def _options(path: Path) -> ServerOptions:
    options = ServerOptions()
    options.realize(["-c", str(path)])
    return options


@pytest.mark.parametrize("var_dir", ["state", "/ABSOLUTE"])
def test_supervisord_reads_var_dir_paths_relative_or_absolute(
    stack_env: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, var_dir: str
) -> None:
    elsewhere = Path(os.path.realpath(str(tmp_path_factory.mktemp("v"))))
    monkeypatch.setenv("VAR_DIR", str(elsewhere / "var") if var_dir == "/ABSOLUTE" else var_dir)
    settings = load_settings()
    expected = elsewhere / "var" if var_dir == "/ABSOLUTE" else stack_env / "state"
    assert settings.var_path == expected
    prepare_var(settings)
    options = _options(write_supervisord_config(settings))
    assert options.serverurl == f"unix://{supervisor_socket(settings)}"
    assert (options.pidfile, options.logfile) == (
        str(expected / "run" / "supervisord.pid"),
        str(expected / "log" / "supervisord.log"),
    )
    assert options.umask == 0o077
    for group in options.process_group_configs:
        [program] = group.process_configs
        assert program.stdout_logfile == str(expected / "log" / f"{program.name}.supervisor.log")
        assert program.environment["VAR_DIR"] == str(expected)
        assert program.environment["STACK_HOME"] == str(stack_env)
        assert program.umask == 0o077


def test_autostart_lists_the_only_programs_that_start_by_themselves(stack_env: Path) -> None:
    settings = load_settings()
    prepare_var(settings)
    options = _options(write_supervisord_config(settings, autostart={"bridge"}))
    started = {g.name for g in options.process_group_configs if g.process_configs[0].autostart}
    assert started == {"bridge"}


def test_a_var_dir_too_deep_for_a_unix_socket_is_one_line(
    stack_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAR_DIR", str(stack_env / ("d" * 120)))
    with pytest.raises(ConfigError, match="VAR_DIR"):
        write_supervisord_config(load_settings())
