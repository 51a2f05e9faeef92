"""One client's API connection to the simulator: handshake, framing, pacing, and what it has subscribed to.

An asyncio Protocol, so the server closes its side as soon as the client closes or resets (no CLOSE_WAIT), except
in lazy-close mode. Bad input (garbage, a truncated or oversized frame, an unknown id) closes only this session;
nothing here may raise out of a callback or block the loop.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger

from procs.gateway_sim import wire
from procs.gateway_sim.faults import PacingBucket, RateMeter, error_text
from procs.gateway_sim.subscriptions import Subscriptions
from procs.gateway_sim.wire import WireError
from procs.gateway_sim.wire_requests import message_id, parse_start_api
from shared.log import log_every

if TYPE_CHECKING:
    from collections.abc import Callable

    from procs.gateway_sim.audit import OrderAudit
    from procs.gateway_sim.broker import SimBroker
    from procs.gateway_sim.contracts import SimContract
    from procs.gateway_sim.faults import Faults
    from procs.gateway_sim.market import Market, SimClock
    from procs.gateway_sim.sim_config import SimConfig
    from procs.gateway_sim.wire_requests import ContractQuery

# A client that stops reading while we stream is cut off before its backlog eats the simulator's memory.
MAX_WRITE_BACKLOG = 8 << 20


class Stage(Enum):
    MAGIC = "magic"  # waiting for b"API\0"
    VERSION = "version"  # waiting for the framed version range
    HANDSHAKE = "handshake"  # our reply is delayed (handshake-delay, silent on)
    AWAITING_START = "awaiting-start"  # reply sent, waiting for startApi
    READY = "ready"  # API started: requests answered
    CLOSED = "closed"


class SlowReplies(Protocol):
    """What the handlers use of the slow answers (procs/gateway_sim/delays.SlowAnswers, which imports this)."""

    def hold_replies(self, session: Session, kind: str, action: Callable[[], None]) -> None: ...
    def follow(self, session: Session, kind: str, action: Callable[[], None]) -> None: ...


class SimServerPort(Protocol):
    """What a session, the handlers and the streams may use of the server (procs/gateway_sim/server.SimServer).

    Declared here, not imported, so that the session and the handlers never import the server that imports them.
    """

    config: SimConfig
    account: str
    faults: Faults
    clock: SimClock
    market: Market
    broker: SimBroker
    audit: OrderAudit
    clients: dict[int, Session]
    next_order_id: int
    account_changed: bool
    account_pushed_ns: int

    @property
    def slow(self) -> SlowReplies: ...
    def on_connect(self, session: Session) -> None: ...
    def claim_client_id(self, session: Session, client_id: int) -> bool: ...
    def on_api_start(self, session: Session) -> None: ...
    def on_leave(self, session: Session) -> None: ...
    def on_disconnect(self, session: Session, exc: Exception | None) -> None: ...
    def dispatch(self, session: Session, msg_id: int, fields: list[str]) -> None: ...
    def log_bad_input(self, session: Session, problem: str, *, close: bool = True) -> None: ...
    def live_sessions(self) -> list[Session]: ...
    def sessions_of(self, client_id: int) -> list[Session]: ...
    def resolve(self, q: ContractQuery) -> SimContract | None: ...
    def contract_of(self, symbol: str) -> SimContract: ...
    def connection_time_text(self) -> str: ...
    async def wait_not_silent(self) -> None: ...
    def allocate_order_id(self, order_id: int) -> None: ...


class Session(asyncio.Protocol):
    def __init__(self, server: SimServerPort) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("?", 0)
        self.stage = Stage.MAGIC
        self.client_id: int | None = None
        self.version = 0
        self.zombie = False  # lazy-close: the client is gone, our side deliberately left open
        self.subs = Subscriptions()
        self.data_type = 1
        self.connected_at = time.time()
        self.last_data = time.monotonic()
        self.rate_in = RateMeter()
        self.rate_out = RateMeter()
        self._pacing = PacingBucket(rate=server.faults.pacing_limit)
        self._reader = wire.FrameReader()
        self._prelude = bytearray()
        self._handshake_task: asyncio.Task[None] | None = None
        self._early: list[list[str]] = []  # messages that arrived before our handshake reply went out
        self._gone = False

    # ------------------------------------------------------------------------------------------ asyncio hooks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = (str(peer[0]), int(peer[1]))
        self.server.on_connect(self)

    def data_received(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        try:
            if self.stage in (Stage.MAGIC, Stage.VERSION):
                self._on_prelude(data)
            elif self.stage != Stage.CLOSED:
                for fields in self._reader.feed(data):
                    self._on_message(fields)
                    if self.closed:
                        break
        except WireError as exc:
            self.reject(str(exc))
        except Exception:  # a simulator bug must not take the other sessions down
            logger.exception("session {}: internal error while handling input; closing it", self.name)
            self.close()

    def eof_received(self) -> bool | None:
        if self._reader.pending and self.stage != Stage.CLOSED:
            self.server.log_bad_input(self, f"truncated frame: {self._reader.pending} bytes then EOF")
        if self.server.faults.lazy_close and self.stage != Stage.CLOSED:
            # Deliberately keep our side open: the kernel holds it in CLOSE_WAIT, as a buggy Gateway does.
            self.zombie = True
            self._leave()
            text = f"session {self.name}: client closed; lazy-close keeps our side open (CLOSE_WAIT)"
            log_every(f"session-lazy:{self.client_id}", 1.0, "INFO", text)
            return True
        return None  # asyncio closes the transport: FIN back at once

    def connection_lost(self, exc: Exception | None) -> None:
        self.stage = Stage.CLOSED
        if self._handshake_task is not None:
            self._handshake_task.cancel()
        self._leave()
        self.server.on_disconnect(self, exc)

    # ----------------------------------------------------------------------------------------------- output

    @property
    def name(self) -> str:
        cid = "-" if self.client_id is None else str(self.client_id)
        return f"client {cid} from port {self.peer[1]}"

    @property
    def closed(self) -> bool:
        return self.stage == Stage.CLOSED

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame (a truncated frame when the client has stopped sending)."""
        return self._reader.pending + len(self._prelude)

    @property
    def live(self) -> bool:
        return self.stage == Stage.READY and not self.zombie

    def send(self, data: bytes, count: int = 1) -> None:
        """Queue messages for this client; dropped when the session is gone or the Gateway is silent."""
        if not self.live or self.server.faults.silent != "off" or self.transport is None:
            return
        self.transport.write(data)
        self.rate_out.add(time.monotonic(), count)
        if self.transport.get_write_buffer_size() > MAX_WRITE_BACKLOG:
            self.server.log_bad_input(self, "client stopped reading: more than 8 MB queued")
            self.close()

    def error(self, req_id: int, code: int, message: str | None = None) -> None:
        text = message if message is not None else error_text(code)
        self.send(wire.error(req_id, code, text, version=self.version))

    def _write_raw(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        """Close with FIN (after what is queued has been sent)."""
        self.stage = Stage.CLOSED
        self._leave()
        if self.transport is not None:
            self.transport.close()

    def close_after_sending(self, linger: float = 2.0) -> None:
        """Send what is queued, then FIN, and read (and drop) what the client still sends until it closes.

        Closing outright with its requests still unread would make the kernel answer with RST, which can destroy
        the last message (error 100) before the client reads it.
        """
        self.stage = Stage.CLOSED
        self._leave()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(linger, transport.close)

    def reset(self) -> None:
        """Close with RST: SO_LINGER 0 makes the kernel abort the connection instead of a FIN."""
        self.stage = Stage.CLOSED
        self._leave()
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.transport.abort()

    def reject(self, problem: str) -> None:
        self.server.log_bad_input(self, problem)
        self.close()

    def _leave(self) -> None:
        if not self._gone:
            self._gone = True
            self.server.on_leave(self)

    # ------------------------------------------------------------------------------------------- handshake

    def _on_prelude(self, data: bytes) -> None:
        self._prelude += data
        if self.stage == Stage.MAGIC:
            if len(self._prelude) < len(wire.API_MAGIC):
                if not wire.API_MAGIC.startswith(bytes(self._prelude)):
                    raise WireError(f"not the TWS API: starts with {bytes(self._prelude)[:16]!r}")
                return
            if not self._prelude.startswith(wire.API_MAGIC):
                raise WireError(f"not the TWS API: starts with {bytes(self._prelude)[:16]!r}")
            del self._prelude[: len(wire.API_MAGIC)]
            self.stage = Stage.VERSION
        # The version range is length-prefixed but, unlike every later message, not NUL-terminated.
        if len(self._prelude) < 4:
            return
        size = int.from_bytes(self._prelude[:4], "big")
        if not 0 < size <= 256:
            raise WireError(f"version range length {size} is not plausible")
        if len(self._prelude) < 4 + size:
            return
        payload, rest = bytes(self._prelude[4 : 4 + size]), bytes(self._prelude[4 + size :])
        self._prelude.clear()
        lo, hi, _options = wire.parse_version_range(payload.rstrip(b"\0"))
        self._early = self._reader.feed(rest) if rest else []
        version = wire.negotiate_version(lo, hi)
        if version is None:
            raise WireError(
                f"client speaks versions {lo}..{hi}; the simulator needs {wire.MIN_CLIENT_VERSION}+"
            )
        self.version = version
        self.stage = Stage.HANDSHAKE
        self._handshake_task = asyncio.get_running_loop().create_task(self._answer_handshake())

    async def _answer_handshake(self) -> None:
        faults = self.server.faults
        if faults.handshake_delay > 0:
            await asyncio.sleep(faults.handshake_delay)
        await self.server.wait_not_silent()
        if self.stage != Stage.HANDSHAKE:
            return
        self._write_raw(wire.handshake_reply(self.version, self.server.connection_time_text()))
        self.stage = Stage.AWAITING_START
        early, self._early = self._early, []
        try:
            for fields in early:
                self._on_message(fields)
        except WireError as exc:
            self.reject(str(exc))

    # ---------------------------------------------------------------------------------------------- requests

    def _on_message(self, fields: list[str]) -> None:
        if self.stage == Stage.HANDSHAKE:
            if len(self._early) >= 100:
                raise WireError("more than 100 messages before the handshake reply")
            self._early.append(fields)
            return
        now = time.monotonic()
        self.rate_in.add(now)
        msg_id = message_id(fields)
        faults = self.server.faults
        if faults.silent != "off":
            return  # a hung Gateway reads and forgets
        if faults.pacing and not self._pacing.allow(now):
            self._exceed_pacing()
            return
        if self.stage == Stage.AWAITING_START:
            if msg_id != 71:
                raise WireError(f"message id {msg_id} before startApi")
            self._start_api(parse_start_api(fields))
            return
        if msg_id == 71:
            raise WireError("startApi sent twice")
        self.server.dispatch(self, msg_id, fields)

    def _exceed_pacing(self) -> None:
        rec = self.rate_in.count
        self.server.log_bad_input(
            self, f"pacing: more than {self._pacing.rate:.0f} messages/s; error 100, dropped"
        )
        self._write_raw(wire.error(-1, 100, error_text(100, rec=rec), version=self.version))
        self.close_after_sending()

    def _start_api(self, client_id: int) -> None:
        self.client_id = client_id
        if not self.server.claim_client_id(self, client_id):
            log_every(
                f"session-326:{client_id}",
                1.0,
                "INFO",
                f"session {self.name}: client id in use: 326, closing",
            )
            self._write_raw(wire.error(-1, 326, error_text(326), version=self.version))
            self.client_id = None
            self.close()
            return
        self.stage = Stage.READY
        self.server.on_api_start(self)

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "client_id": self.client_id,
            "peer_port": self.peer[1],
            "server_version": self.version,  # negotiated with this client; 0 before its version range arrived
            "stage": "zombie" if self.zombie else self.stage.value,
            "connected_for_s": round(time.time() - self.connected_at, 3),
            "msgs_in_per_s": round(self.rate_in.roll(now), 1),
            "msgs_out_per_s": round(self.rate_out.roll(now), 1),
            "msgs_in": self.rate_in.total,
            "msgs_out": self.rate_out.total,
            "market_data_lines": len(self.subs.market),
            "realtime_bars": len(self.subs.bars),
        }
