"""Slow answers (`delay KIND SECONDS`): one kind of request is answered late while the session's other answers go
out on time, and the answers of one kind keep their order.

Each (session, kind) has a queue of due answers drained by loop timers. A slow request's handler runs when it is
due, so the answer says what the Gateway knows then; a slow placeOrder is accepted at once and only what it sends
back waits, with every later order message to that session queued behind it. Nothing here may block or sleep.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger

from procs.gateway_sim.faults import DELAY_KINDS, Faults
from procs.gateway_sim.wire import WireError

if TYPE_CHECKING:
    from procs.gateway_sim.session import Session

KIND_OF_MESSAGE: dict[int, str] = {msg_id: kind for kind, ids in DELAY_KINDS.items() for msg_id in ids}

Answer = Callable[[], None]


class SlowAnswers:
    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._queues: dict[tuple[Session, str], deque[tuple[float, Answer]]] = {}
        self._capturing: set[Session] = set()

    def pending(self, session: Session, kind: str) -> bool:
        return bool(self._queues.get((session, kind)))

    def answer(self, session: Session, kind: str, handler: Answer) -> None:
        """Run a request's handler now, or when its kind's delay is up (behind earlier answers of that kind)."""
        if self._faults.delays.get(kind, 0.0) <= 0 and not self.pending(session, kind):
            handler()
            return
        self._enqueue(session, kind, handler, self._faults.delays.get(kind, 0.0))

    def hold_replies(self, session: Session, kind: str, action: Answer) -> None:
        """Run `action` now, but send what it sends to `session` only when its kind's delay is up."""
        if session in self._capturing or (
            self._faults.delays.get(kind, 0.0) <= 0 and not self.pending(session, kind)
        ):
            action()
            return
        self._enqueue(session, kind, self._captured(session, action), self._faults.delays.get(kind, 0.0))

    def follow(self, session: Session, kind: str, action: Answer) -> None:
        """Send now, unless answers of `kind` to this session are still held: then queue behind them (no delay of
        its own), so a fill never overtakes the acknowledgement of its order."""
        if session in self._capturing or not self.pending(session, kind):
            action()
            return
        self._enqueue(session, kind, self._captured(session, action), 0.0)

    def _captured(self, session: Session, action: Answer) -> Answer:
        chunks: list[tuple[bytes, int]] = []

        def grab(data: bytes, count: int = 1) -> None:
            chunks.append((data, count))

        # Session.send is shadowed for the duration of `action` only (Session.error goes through it too), so
        # whatever the handlers and encoders send is captured without their knowing.
        self._capturing.add(session)
        setattr(session, "send", grab)  # noqa: B010 -- an instance attribute shadowing the method
        try:
            action()
        finally:
            delattr(session, "send")
            self._capturing.discard(session)

        def send_later() -> None:
            if chunks:
                session.send(b"".join(data for data, _ in chunks), sum(n for _, n in chunks))

        return send_later

    def _enqueue(self, session: Session, kind: str, answer: Answer, delay: float) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queues.setdefault((session, kind), deque())
        due = max(loop.time() + delay, queue[-1][0] if queue else 0.0)
        queue.append((due, answer))
        loop.call_at(due, self._drain, session, kind)

    def _drain(self, session: Session, kind: str) -> None:
        queue = self._queues.get((session, kind))
        loop = asyncio.get_running_loop()
        while queue and queue[0][0] <= loop.time():
            _, answer = queue.popleft()
            try:
                answer()
            except WireError as exc:  # the request was malformed: as if answered on time
                session.reject(str(exc))
            except Exception:  # a simulator bug must not take the other sessions down
                logger.exception("session {}: a delayed {} answer failed; closing it", session.name, kind)
                session.close()
        if queue:  # a loop timer may fire a hair before its time: never early, never left behind
            loop.call_at(queue[0][0], self._drain, session, kind)
        else:
            self._queues.pop((session, kind), None)

    def forget(self, session: Session) -> None:
        """The session is gone: what it was still owed is dropped."""
        for key in [k for k in self._queues if k[0] is session]:
            del self._queues[key]
