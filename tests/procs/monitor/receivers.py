"""Real receivers for the monitor's tests: an HTTP server (Apprise's json:// webhook and the dead-man's pings)
that can also hang or refuse, and an SMTP server (aiosmtpd) for mailto://. Loopback only; each stops at exit.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.sim import free_port


@dataclass
class Hit:
    method: str
    path: str
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HookServer:
    """Records every request; `mode` "ok" answers 200, "refuse" 500, "hang" never answers (until stop)."""

    port: int
    hits: list[Hit] = field(default_factory=list)
    mode: str = "ok"
    released: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def json_url(self, path: str = "/hook") -> str:
        # short timeouts: a hanging receiver costs the sink's own thread a second or two per try
        return f"json://127.0.0.1:{self.port}{path}?cto=2&rto=2"

    def at(self, prefix: str) -> list[Hit]:
        return [h for h in list(self.hits) if h.path.startswith(prefix)]


@contextlib.contextmanager
def hook_server() -> Iterator[HookServer]:
    hook = HookServer(free_port())

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            hook.hits.append(Hit(self.command, self.path, body, time.monotonic()))
            if hook.mode == "hang":
                hook.released.wait(30)
                return
            self.send_response(500 if hook.mode == "refuse" else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_GET = do_POST = _any  # noqa: N815 - http.server's names

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", hook.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        hook.released.set()
        server.shutdown()
        server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content.decode("utf-8", "replace"),
            }
        )
        return "250 OK"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
