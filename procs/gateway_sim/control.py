"""Fault injection and status for a running simulator, over a unix control socket (never over the API port).

One JSON object per line each way: `{"argv": ["silent", "on"]}` -> `{"ok": true, ...}`. The socket lives at
`<control-dir>/gateway-sim-<port>.ctl`, so a tool finds the simulator by its API port alone. `run_command` is
the one implementation of every command, shared by the socket, the CLI and the in-process GatewaySim.

`error CODE` (no reqId) also moves the Gateway's state, as the real events would: 1100/2110 stop market data
until 1101/1102; 1101 also drops every market-data subscription (clients must resubscribe); 2103 stops quotes
until 2104; 2105 fails history with 162 until 2106; 10197 stops market data until 2104, 1101 or 1102.
`error CODE ORDER_ID` goes to that order's client only and leaves the order working (10349, 161, 10311 are notices).
A usage error answers {"ok": false, "usage": true, "error": "<one line>"} and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procs.gateway_sim.command_args import CommandError, Refused
from procs.gateway_sim.command_args import number as _number
from procs.gateway_sim.command_args import on_off as _on_off
from procs.gateway_sim.ib_commands import IB_COMMANDS

if TYPE_CHECKING:
    from procs.gateway_sim.server import SimServer

__all__ = ["COMMANDS", "CommandError", "ControlServer", "Refused", "control_path", "request", "run_command"]

CONTROL_TIMEOUT = 5.0
MAX_LINE = 64 * 1024


def control_path(control_dir: Path | str, port: int) -> Path:
    return Path(control_dir) / f"gateway-sim-{port}.ctl"


async def _status(server: SimServer, argv: list[str]) -> dict[str, Any]:
    return server.status()


async def _drop(server: SimServer, argv: list[str]) -> dict[str, Any]:
    return {"closed": server.drop_all(), "how": "FIN"}


async def _reset(server: SimServer, argv: list[str]) -> dict[str, Any]:
    return {"closed": server.reset_all(), "how": "RST"}


async def _silent(server: SimServer, argv: list[str]) -> dict[str, Any]:
    mode = argv[0].lower() if len(argv) == 1 else ""
    mode = {"handshake": "after-handshake"}.get(mode, mode)
    if mode not in ("on", "off", "after-handshake"):
        raise CommandError(
            "usage: silent on|off|after-handshake (after-handshake still answers the handshake)"
        )
    server.set_silent(mode)
    return {"silent": mode}


async def _handshake_delay(server: SimServer, argv: list[str]) -> dict[str, Any]:
    server.faults.handshake_delay = float(_number(argv, "handshake-delay", float, "SECONDS"))
    return {"handshake_delay": server.faults.handshake_delay}


async def _listen(server: SimServer, argv: list[str]) -> dict[str, Any]:
    on = _on_off(argv, "listen")
    try:
        await server.set_listening(on)
    except OSError as exc:
        raise Refused(f"listen on: cannot bind port {server.port}: {exc.strerror}") from None
    return {"listening": on}


async def _error(server: SimServer, argv: list[str]) -> dict[str, Any]:
    usage = "usage: error CODE [REQID|ORDER_ID] [MESSAGE...]   e.g. error 1100, error 10197 5, error 10349 12"
    if not argv or not argv[0].lstrip("-").isdigit():
        raise CommandError(usage)
    code = int(argv[0])
    req_id = -1
    rest = argv[1:]
    if rest and rest[0].lstrip("-").isdigit():
        req_id, rest = int(rest[0]), rest[1:]
    message = " ".join(rest) or None
    sent = server.broadcast_error(code, req_id, message)
    return {"code": code, "req_id": req_id, "sessions": sent, "faults": server.faults.describe()}


async def _pacing(server: SimServer, argv: list[str]) -> dict[str, Any]:
    server.faults.pacing = _on_off(argv, "pacing")
    return {"pacing": server.faults.pacing}


async def _next_id_rollback(server: SimServer, argv: list[str]) -> dict[str, Any]:
    n = int(_number(argv, "next-id-rollback", int, "N"))
    if n < 1:
        raise CommandError("next-id-rollback: N must be at least 1")
    server.faults.next_id_rollback = n
    return {"next_id_rollback": n}


async def _lazy_close(server: SimServer, argv: list[str]) -> dict[str, Any]:
    on = _on_off(argv, "lazy-close")
    server.faults.lazy_close = on
    closed = 0 if on else server.close_zombies()
    return {"lazy_close": on, "closed_lingering": closed}


async def _fill_while_disconnected(server: SimServer, argv: list[str]) -> dict[str, Any]:
    return server.fill_while_disconnected()


async def _readonly(server: SimServer, argv: list[str]) -> dict[str, Any]:
    server.faults.readonly = _on_off(argv, "readonly")
    return {"readonly": server.faults.readonly}


Command = Callable[["SimServer", list[str]], Awaitable[dict[str, Any]]]
COMMANDS: dict[str, tuple[Command, str]] = {
    "status": (_status, "sessions, message rates, open orders, faults in force, sim time"),
    "drop": (_drop, "close every session with FIN"),
    "reset": (_reset, "close every session with RST"),
    "silent": (_silent, "on|off|after-handshake: keep sockets open and answer nothing (API red)"),
    "handshake-delay": (_handshake_delay, "SECONDS: wait before answering each handshake"),
    "listen": (_listen, "off|on: close or reopen the listening socket (sessions stay)"),
    "error": (
        _error,
        "CODE [REQID|ORDER_ID] [MESSAGE]: to every session (1100, 2103...); "
        "an order's to its client only, the order working on (10349, 161, 10311)",
    ),
    "pacing": (_pacing, "on|off: error 100 and a drop for a client above 50 messages/s"),
    "next-id-rollback": (
        _next_id_rollback,
        "N: the next connect gets nextValidId N (a used id then gets 103)",
    ),
    "lazy-close": (_lazy_close, "on|off: leave our side of closed sessions open (Gateway-side CLOSE_WAIT)"),
    "fill-while-disconnected": (_fill_while_disconnected, "fill the working orders of an absent client"),
    "readonly": (_readonly, "on|off: the Gateway's Read-Only API setting (orders get 321)"),
    **IB_COMMANDS,
}


def _usage(error: str) -> dict[str, Any]:
    return {"ok": False, "usage": True, "error": error}


def _is_text(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: bytes that were not UTF-8 on the command line
        return False
    return "\0" not in arg


def usage_text() -> str:
    return "\n".join(f"  {name:<24} {help_}" for name, (_, help_) in COMMANDS.items())


async def run_command(server: SimServer, argv: list[str]) -> dict[str, Any]:
    """Run one control command; never raises: {"ok": false, "usage": true|false, "error": "..."} when it is
    typed wrong (usage: nothing changed) or cannot be done (a refusal)."""
    if not argv:
        return _usage("no command; commands:\n" + usage_text())
    if not all(_is_text(a) for a in argv):
        return _usage("arguments must be UTF-8 text")
    name, *rest = argv
    entry = COMMANDS.get(name.lower())
    if entry is None:
        return _usage(f"unknown command {name!r}; commands:\n" + usage_text())
    try:
        result = await entry[0](server, rest)
    except Refused as exc:
        return {"ok": False, "usage": False, "error": str(exc)}
    except (CommandError, ValueError) as exc:
        return _usage(str(exc))
    except Exception as exc:  # a simulator bug answers one line; the control socket and the simulator go on
        from loguru import logger

        logger.exception("control: {} failed", argv[:1])
        return {"ok": False, "usage": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
    if name.lower() != "status":
        from loguru import logger  # lazily: the CLI imports this module and may run outside the venv

        logger.info("control: {} -> {}", " ".join(argv), result)
    return {"ok": True, **result}


# ------------------------------------------------------------------------------------------ the socket server


class ControlServer:
    """The unix socket that `bin/gateway-sim-ctl` and tests talk to; created 0600 in a 0700 directory."""

    def __init__(self, server: SimServer, control_dir: Path) -> None:
        self.sim = server
        self.path = control_path(control_dir, server.port)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise OSError(f"another simulator already answers on {self.path}")
            self.path.unlink()  # stale, from a simulator that was killed
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_LINE)
        finally:
            os.umask(old_umask)
        from loguru import logger

        logger.info("control socket {}", self.path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), 60.0)
                except (TimeoutError, ValueError, ConnectionError):
                    return
                if not line:
                    return
                writer.write(json.dumps(await self._answer(line), default=str).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            argv = request["argv"]
            if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _usage('expected one JSON object per line: {"argv": ["status"]}')
        return await run_command(self.sim, argv)


def _answers(path: Path) -> bool:
    try:
        request(path, ["status"], timeout=1.0)
        return True
    except OSError:
        return False


def request(path: Path, argv: list[str], timeout: float = CONTROL_TIMEOUT) -> dict[str, Any]:
    """Send one command to a running simulator; OSError when nothing answers at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"argv": argv}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(
                    f"{path}: the simulator closed the control connection without an answer"
                )
            buf += chunk
    answer = json.loads(buf)
    if not isinstance(answer, dict):
        raise ConnectionError(f"{path}: unexpected answer {buf[:80]!r}")
    return answer
