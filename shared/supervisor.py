"""supervisord's XML-RPC over its unix socket, with a timeout, and the supervisord.conf it runs with.

The repository's supervisord.conf writes runtime paths as `%(here)s/var/...`; supervisord_config() renders it
with VAR_DIR's paths (absolute or relative to the stack home), so supervisord, its clients (bin/stack, the
watchdog, gateway-health) and the programs always agree on one socket. It only talks to our own supervisord;
it must never be pointed at anything that could signal the Gateway.
"""

from __future__ import annotations

import configparser
import http.client
import io
import os
import socket
import xmlrpc.client
from collections.abc import Collection
from pathlib import Path
from typing import Any

from supervisor.datatypes import dict_of_key_value_pairs

from shared.config import REPO_ROOT, ConfigError, Settings, file_umask

TEMPLATE = REPO_ROOT / "supervisord.conf"
_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixHTTPConnection(self._path, self._timeout)


def supervisor_socket(settings: Settings) -> Path:
    return settings.run_dir / "supervisor.sock"


def rendered_config_path(settings: Settings) -> Path:
    """Where bin/stack and the tests write the supervisord.conf that supervisord really runs with."""
    return settings.run_dir / "supervisord.conf"


def supervisord_config(
    settings: Settings, template: Path = TEMPLATE, autostart: Collection[str] | None = None
) -> str:
    """`template` with `%(here)s/var` replaced by VAR_DIR, the umask of FILE_GROUP, and STACK_HOME and VAR_DIR
    in every program's environment; `autostart` (when given) lists the only programs that start by themselves.

    ConfigError (one line) when VAR_DIR is too deep for a unix socket path."""
    sock = supervisor_socket(settings)
    if len(os.fsencode(sock)) > _UNIX_PATH_MAX:
        raise ConfigError(
            f"setting VAR_DIR: {sock} is longer than a unix socket path may be ({_UNIX_PATH_MAX} bytes); "
            "use a shorter VAR_DIR"
        )
    here, var = _escape(str(template.resolve().parent)), _escape(str(settings.var_path))
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    parser.read_string(template.read_text(), source=str(template))
    for section in parser.sections():
        for key, value in parser.items(section):
            value = value.replace("%(here)s/var/", f"{var}/").replace("%(here)s/var", var)
            parser.set(section, key, value.replace("%(here)s", here))
        if section.startswith("program:"):
            # every program's files private from its first instant (the simulator has no harness to do it)
            parser.set(section, "umask", f"{file_umask(settings):03o}")
            if autostart is not None:
                on = section.removeprefix("program:") in autostart
                parser.set(section, "autostart", "true" if on else "false")
    env = dict_of_key_value_pairs(parser.get("supervisord", "environment", fallback=""))
    env.update(STACK_HOME=str(settings.home), VAR_DIR=str(settings.var_path))
    parser.set("supervisord", "environment", ",".join(f'{k}="{_escape(v)}"' for k, v in env.items()))
    parser.set("supervisord", "umask", f"{file_umask(settings):03o}")
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def write_supervisord_config(
    settings: Settings, template: Path = TEMPLATE, autostart: Collection[str] | None = None
) -> Path:
    """Render supervisord_config() into var/run/supervisord.conf (private) and return its path."""
    path = rendered_config_path(settings)
    text = supervisord_config(settings, template, autostart)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def _escape(text: str) -> str:
    """supervisord expands `%(name)s` in values: a literal % in a path must be doubled."""
    return text.replace("%", "%%")


def supervisor_rpc(socket_path: Path, timeout: float = 2.0) -> Any:
    """A new XML-RPC proxy to supervisord (a proxy is not reusable after an error, so make one per call)."""
    return xmlrpc.client.ServerProxy(
        "http://localhost", transport=_UnixTransport(str(socket_path), timeout), allow_none=True
    )


def program_states(socket_path: Path, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
    """name -> supervisord's process info (statename, pid, ...); OSError/Fault when supervisord is unreachable."""
    infos = supervisor_rpc(socket_path, timeout).supervisor.getAllProcessInfo()
    return {info["name"]: info for info in infos}
