"""supervisord's XML-RPC over its unix socket, with a timeout: a fresh proxy per call, never a stuck CLI.

Used by the watchdog (restarts), bin/gateway-health (program states) and bin/stack. It only talks to our own
supervisord; it must never be pointed at anything that could signal the Gateway.
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from pathlib import Path
from typing import Any

from shared.config import Settings


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


def supervisor_rpc(socket_path: Path, timeout: float = 2.0) -> Any:
    """A new XML-RPC proxy to supervisord (a proxy is not reusable after an error, so make one per call)."""
    return xmlrpc.client.ServerProxy(
        "http://localhost", transport=_UnixTransport(str(socket_path), timeout), allow_none=True
    )


def program_states(socket_path: Path, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
    """name -> supervisord's process info (statename, pid, ...); OSError/Fault when supervisord is unreachable."""
    infos = supervisor_rpc(socket_path, timeout).supervisor.getAllProcessInfo()
    return {info["name"]: info for info in infos}
