"""The alert path: notices through the policy, into alerts.jsonl, onto every sink's queue; test alerts.

Order of work for each alert that is due: written and fsynced to var/log/alerts.jsonl, then queued to each
sink; each delivery is written after it. On start-up the journal is read back: the policy remembers the last
state of each (kind, subject), and every due alert a sink has not taken is queued to it again (late).
It never raises into the bus loop: a bad journal line is skipped, a disk error costs a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from loguru import logger

from procs.monitor import journal as jn
from procs.monitor.notices import Notice
from procs.monitor.policy import AlertPolicy, Verdict
from procs.monitor.sinks import Sink, deliver_forever, send_blocking
from shared.log import event, log_every

TEST_SEND_TIMEOUT = 20.0
_NOT_JOURNALED = frozenset({"duplicate", "quiet"})  # repeats of a state: counted, not written


class Alerting:
    def __init__(self, policy: AlertPolicy, journal_path: Path, sinks: list[Sink]) -> None:
        self.policy = policy
        self.journal = jn.Journal(journal_path)
        self.sinks = sinks
        self.delivered: dict[str, set[str]] = {}  # alert id -> sinks, for `bin/trader alerts` (recent ones)
        self.journal_errors = 0

    def recover(self) -> int:
        """Read alerts.jsonl back: the policy's memory, and unsent alerts queued again. Returns how many."""
        jn.remove_torn_tail(self.journal.path)
        loaded = self.journal.load()
        if loaded.bad_lines:
            logger.warning("alerts.jsonl: skipped {} unreadable line(s)", loaded.bad_lines)
        for (kind, subject), (state, sent) in jn.last_states(loaded).items():
            self.policy.remember(kind, subject, state, sent)
        self.delivered = {r.id: set(loaded.delivered.get(r.id, ())) for r in self.journal.recent}
        by_name = {s.name: s for s in self.sinks}
        again = jn.unsent(loaded, list(by_name))
        for record, missing in again:
            for name in missing:
                by_name[name].queue.put_nowait(record)
        if again:
            logger.info(
                "{} alert(s) due before the restart and not yet delivered: sending them now", len(again)
            )
        return len(again)

    def notify(self, notice: Notice) -> list[Verdict]:
        verdicts = self.policy.decide(notice)
        for v in verdicts:
            if v.outcome in _NOT_JOURNALED:
                continue
            record = jn.new_record(v.notice, v.outcome)
            try:
                self.journal.write(record)  # before any send: a kill from here on loses nothing that was due
            except OSError as exc:
                self.journal_errors += 1
                log_every("monitor.journal", 60.0, "ERROR", f"cannot write alerts.jsonl: {exc}")
            self.delivered[record.id] = set()
            if len(self.delivered) > 1000:
                self.delivered.pop(next(iter(self.delivered)))
            event(
                "alert",
                level="INFO" if v.send else "DEBUG",
                kind=v.notice.kind,
                subject=v.notice.subject,
                state=repr(v.notice.state[:80]),
                outcome=v.outcome,
            )
            if v.send:
                for sink in self.sinks:
                    sink.queue.put_nowait(record)
        return verdicts

    def send_always(self, notice: Notice) -> None:
        """A scheduled message (the daily report's summary): journaled and queued to every sink, whatever
        ALERT_LEVEL says (it is asked for, not an alarm) and outside the rate limit."""
        record = jn.new_record(notice, "due")
        try:
            self.journal.write(record)
        except OSError as exc:
            log_every("monitor.journal", 60.0, "ERROR", f"cannot write alerts.jsonl: {exc}")
        self.delivered[record.id] = set()
        for sink in self.sinks:
            sink.queue.put_nowait(record)

    def on_delivered(self, sink: Sink, record: jn.AlertRecord) -> None:
        self.delivered.setdefault(record.id, set()).add(sink.name)
        try:
            self.journal.delivered(record.id, sink.name)
        except OSError as exc:
            log_every("monitor.journal", 60.0, "ERROR", f"cannot write alerts.jsonl: {exc}")

    def tasks(self, stop: asyncio.Event) -> list[Any]:
        return [deliver_forever(s, stop, self.on_delivered) for s in self.sinks]

    def recent(self, limit: int) -> list[dict[str, Any]]:
        records = list(self.journal.recent)[-max(1, min(limit, 500)) :]
        return [jn.view(r, self.delivered) for r in records]

    def sink_states(self) -> list[dict[str, Any]]:
        return [{"name": s.name, **s.state()} for s in self.sinks]

    def last_delivery_ns(self) -> int:
        return max((s.last_success_ns for s in self.sinks), default=0)

    async def test_alert(self, message: str) -> dict[str, Any]:
        """One message through every sink at once, outside the queues and the policy; which took it."""
        notice = Notice("test", "operator", str(time.time_ns()), "INFO", "Test alert", message, sticky=False)
        record = jn.new_record(notice, "test")
        with contextlib.suppress(OSError):
            self.journal.write(record)

        async def one(sink: Sink) -> str:
            try:
                ok = await asyncio.wait_for(
                    asyncio.to_thread(send_blocking, sink.plugin, record), TEST_SEND_TIMEOUT
                )
            except TimeoutError:
                return f"failed: no answer within {TEST_SEND_TIMEOUT:g}s"
            except Exception as exc:
                return f"failed: {type(exc).__name__}"
            if ok:
                self.on_delivered(sink, record)
                return "ok"
            return "failed: the service refused or did not answer"

        results = await asyncio.gather(*(one(s) for s in self.sinks))
        return {
            "sinks": {s.name: r for s, r in zip(self.sinks, results, strict=True)},
            "configured": len(self.sinks),
            "hint": "" if self.sinks else "no ALERT_URLS set: alerts stay on this machine",
        }
