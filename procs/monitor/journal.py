"""var/log/alerts.jsonl: every alert decided, written (and fsynced) before it is sent; each delivery after.

One JSON object per line. An alert line: {"id", "ts_ns", "kind", "subject", "state", "severity", "title",
"text", "outcome", "recovery"}; a delivery line: {"id", "sink", "delivered_ns"}. An alert with outcome
"due" (or "summary") and no delivery line for a sink is unsent to that sink: after a restart, even a SIGKILL
in the middle of a send, it is sent again (at least once; a sink may see it twice, never zero times).
It must never raise into the monitor's loop over a bad line: a torn last line (a kill mid-write) is skipped.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from procs.monitor.notices import Notice

COMPACT_BYTES = 5_000_000  # at start-up, a bigger journal keeps its unsent alerts and its last KEEP lines
KEEP = 2000
SENDABLE = frozenset({"due", "summary"})


class AlertRecord(msgspec.Struct, kw_only=True):
    id: str
    ts_ns: int
    kind: str
    subject: str
    state: str
    severity: str
    title: str
    text: str
    outcome: str
    recovery: bool = False


class Delivery(msgspec.Struct, kw_only=True):
    id: str
    sink: str
    delivered_ns: int


@dataclass
class Loaded:
    records: list[AlertRecord]
    delivered: dict[str, set[str]]  # alert id -> sinks it reached
    bad_lines: int


def new_record(notice: Notice, outcome: str, now_ns: int | None = None) -> AlertRecord:
    return AlertRecord(
        id=uuid.uuid4().hex[:16],
        ts_ns=now_ns or time.time_ns(),
        kind=notice.kind,
        subject=notice.subject,
        state=notice.state,
        severity=notice.severity,
        title=notice.title,
        text=notice.text(),
        outcome=outcome,
        recovery=notice.recovery,
    )


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.recent: deque[AlertRecord] = deque(maxlen=500)  # for `bin/trader alerts`

    def load(self) -> Loaded:
        """Every record in the file (compacting it first when it is big)."""
        records: list[AlertRecord] = []
        delivered: dict[str, set[str]] = {}
        bad = 0
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Loaded([], {}, 0)
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                doc = msgspec.json.decode(line)
                if isinstance(doc, dict) and "delivered_ns" in doc:
                    d = msgspec.convert(doc, Delivery)
                    delivered.setdefault(d.id, set()).add(d.sink)
                else:
                    records.append(msgspec.convert(doc, AlertRecord))
            except (msgspec.DecodeError, msgspec.ValidationError):
                bad += 1
        self.recent.extend(records[-self.recent.maxlen :] if self.recent.maxlen else records)
        if len(raw) > COMPACT_BYTES:
            self._compact(records, delivered)
        return Loaded(records, delivered, bad)

    def _compact(self, records: list[AlertRecord], delivered: dict[str, set[str]]) -> None:
        keep_ids = {r.id for r in records[-KEEP:]}
        keep_ids |= {r.id for r in records if r.outcome in SENDABLE and r.id not in delivered}
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            for r in records:
                if r.id in keep_ids:
                    fh.write(msgspec.json.encode(r) + b"\n")
                    for sink in sorted(delivered.get(r.id, ())):
                        fh.write(
                            msgspec.json.encode(Delivery(id=r.id, sink=sink, delivered_ns=r.ts_ns)) + b"\n"
                        )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def write(self, record: AlertRecord) -> None:
        """Append one alert; one that is to be sent is on disk (fsynced) before this returns."""
        self._append(msgspec.json.encode(record), sync=record.outcome in SENDABLE)
        self.recent.append(record)

    def delivered(self, alert_id: str, sink: str) -> None:
        self._append(
            msgspec.json.encode(Delivery(id=alert_id, sink=sink, delivered_ns=time.time_ns())), sync=False
        )

    def _append(self, line: bytes, sync: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line + b"\n")  # one write of a whole line: O_APPEND never interleaves it
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)


def unsent(loaded: Loaded, sinks: list[str]) -> list[tuple[AlertRecord, list[str]]]:
    """Alerts that were due and the sinks they have not reached yet, oldest first."""
    out = []
    for r in loaded.records:
        if r.outcome not in SENDABLE:
            continue
        missing = [s for s in sinks if s not in loaded.delivered.get(r.id, set())]
        if missing:
            out.append((r, missing))
    return out


def view(record: AlertRecord, delivered: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """One alert as `bin/trader alerts` shows it."""
    doc: dict[str, Any] = msgspec.to_builtins(record)
    if delivered is not None:
        doc["delivered_to"] = sorted(delivered.get(record.id, ()))
    return doc


def last_states(loaded: Loaded) -> dict[tuple[str, str], tuple[str, bool]]:
    """(kind, subject) -> (last state, whether it was sent): the policy's memory across a restart."""
    out: dict[tuple[str, str], tuple[str, bool]] = {}
    for r in loaded.records:
        if r.outcome in ("duplicate", "summary"):
            continue
        out[(r.kind, r.subject)] = (r.state, r.outcome == "due")
    return out


def remove_torn_tail(path: Path) -> None:
    """A kill in the middle of a write leaves a line without its newline: end it, so the next append is whole."""
    with contextlib.suppress(OSError):
        with open(path, "rb+") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
