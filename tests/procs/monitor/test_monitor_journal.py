"""alerts.jsonl: written before the send, delivered after; a torn line and a restart lose nothing that was due."""

from __future__ import annotations

from pathlib import Path

from procs.monitor import journal as jn
from procs.monitor.notices import Notice


def notice(state: str = "HALTED") -> Notice:
    return Notice("halt", "trading", state, "CRITICAL", "Trading halted", "loss")


def test_an_alert_due_and_not_delivered_is_unsent_after_a_restart(short_tmp: Path) -> None:
    path = short_tmp / "alerts.jsonl"
    j = jn.Journal(path)
    first, second = jn.new_record(notice(), "due"), jn.new_record(notice("TRADING"), "due")
    j.write(first)
    j.write(jn.new_record(notice("X"), "rate_limited"))
    j.write(second)
    j.delivered(first.id, "json#1")
    with open(path, "ab") as fh:
        fh.write(b'{"id": "torn", "ts_')  # a kill in the middle of a write
    jn.remove_torn_tail(path)
    again = jn.Journal(path)
    loaded = again.load()
    assert loaded.bad_lines == 1
    assert [(r.id, sinks) for r, sinks in jn.unsent(loaded, ["json#1", "mailto#2"])] == [
        (first.id, ["mailto#2"]),
        (second.id, ["json#1", "mailto#2"]),
    ]
    assert jn.last_states(loaded)[("halt", "trading")] == ("TRADING", True)
    assert path.stat().st_mode & 0o077 == 0


def test_compaction_keeps_every_unsent_alert(short_tmp: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(jn, "COMPACT_BYTES", 1000)
    monkeypatch.setattr(jn, "KEEP", 3)
    path = short_tmp / "alerts.jsonl"
    j = jn.Journal(path)
    old_unsent = jn.new_record(notice(), "due")
    j.write(old_unsent)
    for i in range(30):
        r = jn.new_record(notice(f"S{i}"), "due")
        j.write(r)
        j.delivered(r.id, "json#1")
    j.load()
    loaded = jn.Journal(path).load()
    assert len(loaded.records) == 4
    assert [r.id for r, _ in jn.unsent(loaded, ["json#1"])] == [old_unsent.id]
