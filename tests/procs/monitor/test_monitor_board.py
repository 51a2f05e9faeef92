"""The dashboard's table of programs: a heartbeat that is never heard by design says why; any other says never."""

from __future__ import annotations

import os
from pathlib import Path

from procs.monitor.board import Board, snapshot
from procs.monitor.view import StackView
from shared.config import load_settings
from shared.messages import Heartbeat


def test_silent_and_self_heartbeats_say_why_and_a_missing_one_says_nothing(stack_env: Path) -> None:
    view = StackView(supervisord_up=True)
    view.programs = {
        "gateway_sim": "RUNNING",
        "monitor": "RUNNING",
        "executor": "RUNNING",
        "bridge": "RUNNING",
    }
    view.heartbeats["bridge"] = (
        Heartbeat(program="bridge", pid=os.getpid(), state="READY", started_ns=1),
        10.0,
    )
    page = snapshot(load_settings(), view, Board(), [], False, 12.5)
    rows = {p["name"]: p for p in page["programs"]}
    assert rows["gateway_sim"]["heartbeat_note"] == "sends none"
    assert rows["monitor"]["heartbeat_note"] == "this page"
    assert rows["executor"]["heartbeat_note"] == "" and rows["executor"]["heartbeat_age_s"] is None
    assert rows["bridge"]["heartbeat_age_s"] == 2.5 and rows["bridge"]["heartbeat_note"] == ""
