"""The monitor's one HTTP port (MONITOR_BIND:MONITOR_PORT): the live dashboard at `/`, its server-sent
events at `/events`, the same data at `/state`, Prometheus' `/metrics`, and `POST /halt` when allowed.

Safe by default: bound to 127.0.0.1; any other address needs DASHBOARD_TOKEN (checked here at start: exit 78
naming the key), and once a token is set every request must carry it (401 otherwise, whatever the path).
The only thing it ever asks of the stack is a halt, and only with DASHBOARD_CONTROL=true, behind the token,
through the executor's request socket like `bin/trader halt`. It never shows the token or the account id.
A malformed query string is a 400 and an unknown path a 404: never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from loguru import logger
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.config import ConfigError, Settings

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css", "dashboard.png": "image/png"}
LOOPBACK_DEFAULT = "127.0.0.1"
COOKIE = "dashboard_token"
PUSH_EVERY = 0.2  # seconds between two looks for a change: live updates well inside a second
REFRESH_EVERY = 2.0  # seconds: heartbeat ages move even when nothing else does
KEEPALIVE = 15.0
QUERY_KEYS = frozenset({"token"})


def check_bind(s: Settings) -> None:
    """ConfigError (exit 78, one line naming the key) when the dashboard would be reachable without a token."""
    token = s.dashboard_token.get_secret_value()
    if s.monitor_bind != LOOPBACK_DEFAULT and not token:
        raise ConfigError(
            f"setting DASHBOARD_TOKEN: MONITOR_BIND={s.monitor_bind} is not {LOOPBACK_DEFAULT}, so the dashboard "
            "needs a token: set DASHBOARD_TOKEN to a long random secret, or MONITOR_BIND=127.0.0.1"
        )
    if s.dashboard_control and not token:
        raise ConfigError(
            "setting DASHBOARD_TOKEN: DASHBOARD_CONTROL=true puts a halt button behind the token; "
            "set DASHBOARD_TOKEN to a long random secret, or DASHBOARD_CONTROL=false"
        )


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


class Hub:
    """One snapshot built per change, shared by every open page (three browsers cost one build, not three)."""

    def __init__(self, build: Callable[[], dict[str, Any]], version: Callable[[], int]) -> None:
        self.build, self.version = build, version
        self.payload = b""
        self.clients = 0
        self._seen = -1
        self._built_at = 0.0
        self._fresh = asyncio.Event()

    async def pump(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            now = loop.time()
            if self.clients and (self.version() != self._seen or now - self._built_at >= REFRESH_EVERY):
                self.refresh(now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PUSH_EVERY)
        self._fresh.set()

    def refresh(self, now: float) -> bytes:
        self._seen, self._built_at = self.version(), now
        self.payload = b"data: " + json.dumps(self.build(), default=str).encode() + b"\n\n"
        fresh, self._fresh = self._fresh, asyncio.Event()
        fresh.set()
        return self.payload

    async def stream(self, stop: asyncio.Event) -> AsyncIterator[bytes]:
        self.clients += 1
        try:
            yield self.refresh(asyncio.get_running_loop().time())
            while not stop.is_set():
                fresh = self._fresh
                try:
                    await asyncio.wait_for(fresh.wait(), KEEPALIVE)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if not stop.is_set():
                    yield self.payload
        finally:
            self.clients -= 1


class TokenGate:
    """Every request carries DASHBOARD_TOKEN when one is set (header, cookie, or ?token= once); else 401.
    Also the query-string check: malformed or unknown keys are a 400 before any route runs."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            query = parse_qsl(
                scope.get("query_string", b"").decode("ascii"), keep_blank_values=True, strict_parsing=True
            ) if scope.get("query_string") else []  # fmt: skip
            if any(k not in QUERY_KEYS for k, _ in query):
                raise ValueError("unknown query key")
        except (ValueError, UnicodeDecodeError):
            await PlainTextResponse("bad query string\n", status_code=400)(scope, receive, send)
            return
        if self.token and not self._allowed(Request(scope), dict(query)):
            resp = PlainTextResponse(
                "401: this dashboard needs its token (DASHBOARD_TOKEN)\n", status_code=401
            )
            resp.headers["WWW-Authenticate"] = 'Bearer realm="dashboard"'
            await resp(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _given(self, req: Request, query: dict[str, str]) -> list[str]:
        auth = req.headers.get("authorization", "")
        return [
            auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else "",
            req.headers.get("x-dashboard-token", ""),
            req.cookies.get(COOKIE, ""),
            query.get("token", ""),
        ]

    def _allowed(self, req: Request, query: dict[str, str]) -> bool:
        return any(g and hmac.compare_digest(g.encode(), self.token) for g in self._given(req, query))


def build_app(
    s: Settings,
    hub: Hub,
    stop: asyncio.Event,
    metrics: Callable[[], list[Metric]],
    halt: Callable[[str], Awaitable[dict[str, Any]]],
) -> ASGIApp:
    token = s.dashboard_token.get_secret_value()
    assets = {name: (STATIC / name).read_bytes() for name in ASSETS if (STATIC / name).exists()}
    page = (STATIC / "dashboard.html").read_text()

    async def index(req: Request) -> Response:
        resp = Response(page, media_type="text/html; charset=utf-8", headers=_NO_STORE)
        given = req.query_params.get("token")
        if token and given:  # the token from a link: kept in a cookie so the page's own requests carry it
            resp.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/")
        return resp

    async def asset(req: Request) -> Response:
        name = req.path_params["name"]
        if name not in assets:
            return PlainTextResponse("not found\n", status_code=404)
        return Response(assets[name], media_type=ASSETS[name], headers={"Cache-Control": "max-age=300"})

    async def state(req: Request) -> Response:
        return JSONResponse(json.loads(hub.refresh(asyncio.get_running_loop().time())[6:]), headers=_NO_STORE)

    async def events(req: Request) -> Response:
        return StreamingResponse(
            hub.stream(stop),
            media_type="text/event-stream",
            headers={**_NO_STORE, "X-Accel-Buffering": "no"},
        )

    async def prometheus(req: Request) -> Response:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Fixed(metrics()))
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def not_found(req: Request, exc: Exception) -> Response:
        return PlainTextResponse("not found\n", status_code=404)

    async def failed(req: Request, exc: Exception) -> Response:
        logger.error("dashboard: {} {} failed: {!r}", req.method, req.url.path, exc)
        return PlainTextResponse("internal error (see var/log/monitor.log)\n", status_code=500)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/static/{name}", asset),
            Route("/state", state),
            Route("/events", events),
            Route("/metrics", prometheus),
            *_control_routes(s, token, halt),
        ],
        exception_handlers={404: not_found, 500: failed},
    )
    return TokenGate(app, token)


def _control_routes(s: Settings, token: str, halt: Callable[[str], Awaitable[dict[str, Any]]]) -> list[Route]:
    """POST /halt and the page's /control (its header value): off unless DASHBOARD_CONTROL and a token."""

    async def halt_now(req: Request) -> Response:
        # a header, not the cookie: another site's form cannot halt the stack by riding the browser's cookie
        if not (s.dashboard_control and token):
            return PlainTextResponse("the halt button is off (DASHBOARD_CONTROL=false)\n", status_code=403)
        given = req.headers.get("x-dashboard-token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return PlainTextResponse("halt needs the X-Dashboard-Token header\n", status_code=403)
        try:
            return JSONResponse(await halt("halted from the dashboard"))
        except Exception as exc:  # the executor is down or refused: say so, never a traceback
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=503)

    async def page_token(req: Request) -> Response:
        # the halt button's header: handed only to a page that already proved it has the token
        if not (s.dashboard_control and token):
            return PlainTextResponse("not found\n", status_code=404)
        return JSONResponse({"token": token}, headers=_NO_STORE)

    return [Route("/halt", halt_now, methods=["POST"]), Route("/control", page_token)]


_NO_STORE = {"Cache-Control": "no-store"}


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # SIGTERM and SIGINT belong to the service harness, which sets `stop`


def listen(s: Settings) -> socket.socket:
    """The bound, listening socket (OSError when the port is taken)."""
    family = socket.AF_INET6 if ":" in s.monitor_bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((s.monitor_bind, s.monitor_port))
        sock.listen(64)
        sock.set_inheritable(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve(app: ASGIApp, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve `app` on `sock` until `stop` is set."""
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        server_header=False,
    )
    server = _Server(config)

    async def stopper() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stopper())
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()
        sock.close()
