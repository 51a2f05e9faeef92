"""Subscribing: take topic prefixes from one or more publishers, decode by the contract, and number each stream.

Gaps and new epochs are told to the caller (resynchronise by request); a malformed frame is counted, logged
(rate-limited) and dropped, never raised into the caller's loop. The sequencing is shared by the ZeroMQ
Subscriber and the in-memory one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import zmq
import zmq.asyncio

from shared.bus.endpoints import HWM, stream_of, topic_matches
from shared.bus.readiness import Readiness, plain_socket
from shared.contract import PUBLISHED
from shared.log import log_every
from shared.messages import Published

DECODER: msgspec.msgpack.Decoder[Published] = msgspec.msgpack.Decoder(PUBLISHED)


@dataclass(frozen=True, slots=True)
class Received:
    """One message off a stream; gap > 0 or new_epoch means messages were lost: resynchronise by request."""

    topic: str
    msg: Published
    gap: int = 0
    new_epoch: bool = False

    @property
    def needs_resync(self) -> bool:
        return self.gap > 0 or self.new_epoch


@dataclass(slots=True)
class StreamStats:
    received: int = 0
    gaps: int = 0
    lost: int = 0
    new_epochs: int = 0
    malformed: int = 0
    epochs: dict[str, str] = field(default_factory=dict)  # source -> its epoch
    last_seen: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, stream) -> stream_seq


class Sequencer:
    """Turns (topic, body) frames into Received: filters by prefix, decodes, tracks epochs and stream numbers.

    A gap is only certain in a stream taken whole: prefix "" (everything), `bar.` or `fill` take whole streams,
    `bar.AAPL` takes part of one (its gaps go unseen)."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        self.prefixes = tuple(prefixes)
        self._whole = {p.removesuffix(".") for p in self.prefixes if "." not in p.removesuffix(".")}
        self.stats = StreamStats()

    def _accept(self, frames: Sequence[bytes]) -> Received | None:
        if len(frames) != 2:
            self._malformed(f"{len(frames)} frames")
            return None
        topic = bytes(frames[0]).decode(errors="replace")
        if not any(topic_matches(topic, p) for p in self.prefixes):
            return None
        try:
            msg = DECODER.decode(frames[1])
        except msgspec.DecodeError as exc:
            self._malformed(f"{topic}: {exc}")
            return None
        return self._sequence(topic, msg)

    def _sequence(self, topic: str, msg: Published) -> Received:
        st = self.stats
        st.received += 1
        stream = stream_of(topic)
        known = st.epochs.get(msg.source)
        if known != msg.epoch:  # the first message of a source, or of its new process: numbers start again
            st.epochs[msg.source] = msg.epoch
            for key in [k for k in st.last_seen if k[0] == msg.source]:
                del st.last_seen[key]
            st.last_seen[(msg.source, stream)] = msg.stream_seq
            if known is None:
                return Received(topic, msg)
            st.new_epochs += 1
            return Received(topic, msg, new_epoch=True)
        prev = st.last_seen.get((msg.source, stream))
        st.last_seen[(msg.source, stream)] = msg.stream_seq
        if prev is None or not ("" in self._whole or stream in self._whole):
            return Received(topic, msg)
        gap = msg.stream_seq - prev - 1
        if gap > 0:
            st.gaps += 1
            st.lost += gap
            return Received(topic, msg, gap=gap)
        return Received(topic, msg)

    def _malformed(self, what: str) -> None:
        self.stats.malformed += 1
        log_every("bus.malformed", 10.0, "WARNING", f"dropped a malformed message ({what})")


class Subscriber(Sequencer):
    """Connects a SUB socket to one or more publishers and tracks each source's epoch and each stream's numbers."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoints: Sequence[str], prefixes: Sequence[str]) -> None:
        super().__init__(prefixes)
        self._owner, self._sock = plain_socket(ctx, zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, HWM)
        for p in self.prefixes:
            self._sock.setsockopt(zmq.SUBSCRIBE, p.encode())
        for ep in endpoints:
            self._sock.connect(ep)
        self._ready = Readiness(self._sock)
        # messages already waiting are read without waiting (~10x the throughput of a wait each); every FAST_READS
        # reads it still yields, so a flood cannot starve the loop
        self._fast_reads = 0

    FAST_READS = 256

    async def recv(self, timeout: float | None = None) -> Received | None:
        """The next well-formed message, or None when `timeout` seconds pass with nothing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            frames = self._read_waiting()
            if frames is None:
                wait = None if deadline is None else deadline - time.monotonic()
                if not await self._ready.wait(wait):
                    return None
                continue
            if self._fast_reads >= self.FAST_READS:
                self._fast_reads = 0
                await asyncio.sleep(0)
            got = self._accept(frames)
            if got is not None:
                return got
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def recv_nowait(self) -> Received | None:
        """The next well-formed message already waiting, or None at once (never waits, never yields)."""
        while (frames := self._read_waiting()) is not None:
            got = self._accept(frames)
            if got is not None:
                return got
        return None

    def _read_waiting(self) -> list[bytes] | None:
        try:
            frames = self._sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            self._fast_reads = 0
            return None
        self._fast_reads += 1
        return frames

    def close(self) -> None:
        self._ready.close()
        self._owner.close(linger=0)
