"""Publishing: stamp every message with its envelope (source, epoch, seq, stream_seq, ts_ns) and send it.

The stamping and the contract check are shared by the ZeroMQ Publisher and the in-memory one. It must never
block: PUB never waits, and a mistyped message raises only in strict mode (tests); in production it is sent.
"""

from __future__ import annotations

import os
import time
import uuid

import msgspec
import zmq
import zmq.asyncio

from shared.bus.endpoints import HWM, bind, stream_of
from shared.bus.readiness import plain_socket
from shared.contract import check_published, strict_from_env
from shared.messages import Message

ENCODER = msgspec.msgpack.Encoder()


class Stamper:
    """The envelope's numbers for one publishing process, and the contract check, cached per stream."""

    def __init__(self, source: str, *, strict: bool | None = None) -> None:
        self.source = source
        self.epoch = f"{source}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.seq = 0
        self.stream_seqs: dict[str, int] = {}
        self.strict = strict_from_env() if strict is None else strict
        # stream -> the type checked last: one dict lookup per message once a stream's type has been seen
        self._checked: dict[str, type[Message]] = {}

    def stamp(self, topic: str, msg: Message) -> tuple[str, Message]:
        """(stream, stamped message); ContractError in strict mode for a message its stream does not carry."""
        stream = stream_of(topic)
        if self.strict and self._checked.get(stream) is not type(msg):
            check_published(stream, msg)
            self._checked[stream] = type(msg)
        self.seq += 1
        n = self.stream_seqs[stream] = self.stream_seqs.get(stream, 0) + 1
        stamped = msgspec.structs.replace(
            msg, source=self.source, epoch=self.epoch, seq=self.seq, stream_seq=n, ts_ns=time.time_ns()
        )
        return stream, stamped


class Publisher(Stamper):
    """Binds a PUB socket and stamps every message with source, epoch, seq (+1 each), stream_seq (+1 each in its
    stream) and ts_ns."""

    def __init__(self, ctx: zmq.asyncio.Context, ep: str, source: str, *, strict: bool | None = None) -> None:
        super().__init__(source, strict=strict)
        self._owner, self._sock = plain_socket(ctx, zmq.PUB)  # PUB never blocks: publish() stays synchronous
        self._sock.setsockopt(zmq.SNDHWM, HWM)
        bind(self._sock, ep)
        self.endpoint = ep

    def publish(self, topic: str, msg: Message) -> Message:
        """Stamp and send; returns the stamped message."""
        _, stamped = self.stamp(topic, msg)
        self._sock.send_multipart((topic.encode(), ENCODER.encode(stamped)))
        return stamped

    def close(self) -> None:
        self._owner.close(linger=0)
