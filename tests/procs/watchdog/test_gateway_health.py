"""bin/gateway-health: the pure report (statuses, remedies, exit codes) and the command without a stack."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from pathlib import Path

import msgspec

from procs.watchdog.health import EXIT_CODES, Facts, checks, overall, render_json, render_table
from procs.watchdog.model import CloseWait, Owner, ProgramInfo, ProgramTable, Snapshot
from shared.messages import HealthReport, Heartbeat

HEALTH = Path(__file__).resolve().parents[3] / "bin" / "gateway-health"
NOW = 1_800_000_000.0
PORT = 14002
SIM = Owner(7, "python", "/usr/bin/python3.11", 0, ("python", "-m", "procs.gateway_sim"))
BRIDGE = Owner(10, "python", "/usr/bin/python3.11", 0, ("python", "-m", "procs.bridge"))


def facts(**changes: object) -> Facts:
    base = Facts(
        now=NOW,
        gateway="sim",
        host="127.0.0.1",
        port=PORT,
        gateway_is_local=True,
        snapshot=Snapshot(PORT, NOW, (), True, frozenset({7}), {7: SIM, 10: BRIDGE}),
        programs=ProgramTable(
            (
                ProgramInfo("gateway_sim", "gateway_sim", "RUNNING", 7, NOW - 60),
                ProgramInfo("bridge", "bridge", "RUNNING", 10, NOW - 60),
                ProgramInfo("watchdog", "watchdog", "RUNNING", 11, NOW - 60),
            ),
            1,
        ),
        bridge=HealthReport(
            program="bridge", state="READY", server_version=178, client_id=1, accounts=["DU****567"]
        ),
        watchdog=Heartbeat(
            program="watchdog",
            pid=11,
            state="WATCHING",
            started_ns=0,
            ts_ns=int((NOW - 1) * 1e9),
            detail={"last_scan_ns": int((NOW - 2) * 1e9), "restarts": 0},
        ),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def statuses(f: Facts) -> dict[str, str]:
    return {c.name: c.status for c in checks(f)}


def test_a_healthy_stack_is_ok_with_exit_0() -> None:
    found = checks(facts())
    assert overall(found) == "OK" and EXIT_CODES[overall(found)] == 0
    assert all(c.status == "OK" for c in found)
    assert "LISTEN by python (pid 7)" in render_table(facts(), found)


def test_gateway_side_close_waits_warn_with_the_humans_remedy() -> None:
    snap = Snapshot(PORT, NOW, (CloseWait("gateway", "a", "b", 7),), True, frozenset({7}), {7: SIM})
    found = checks(facts(snapshot=snap))
    [warn] = [c for c in found if c.status != "OK"]
    assert warn.name == "gateway CLOSE_WAIT" and "2FA" in warn.remedy and "IBC" in warn.remedy
    assert overall(found) == "WARNING"
    assert json.loads(render_json(facts(snapshot=snap), found))["close_wait"]["gateway_side"] == 1


def test_client_side_close_waits_name_the_owner_and_the_fix() -> None:
    stranger = Owner(99, "python3", "/usr/bin/python3", 0)
    sockets = (
        CloseWait("client", "x", "y", 10),
        CloseWait("client", "z", "y", 99),
        CloseWait("client", "q", "y", None),
    )
    snap = Snapshot(PORT, NOW, sockets, True, frozenset({7}), {7: SIM, 10: BRIDGE, 99: stranger})
    remedies = [c.remedy for c in checks(facts(snapshot=snap)) if c.name == "client CLOSE_WAIT"]
    assert "supervisorctl restart bridge" in remedies[0]
    assert "stop that process yourself" in remedies[1] and "never kill the Gateway" in remedies[1]
    assert "ss -tanp" in remedies[2]


def test_the_bridge_state_decides_its_line() -> None:
    for state, expected in (("DEGRADED", "WARNING"), ("CONNECTING", "WARNING"), ("STALLED", "CRITICAL")):
        report = HealthReport(program="bridge", state=state, remedy="restart the Gateway with 2FA")
        found = checks(facts(bridge=report))
        [line] = [c for c in found if c.name == "bridge"]
        assert line.status == expected and line.remedy == "restart the Gateway with 2FA"
    silent = checks(facts(bridge=None, bridge_error="no reply within 0.5s"))
    assert [c.status for c in silent if c.name == "bridge"] == ["CRITICAL"]


def test_programs_supervisord_and_the_watchdog() -> None:
    table = ProgramTable(
        (
            ProgramInfo("bridge", "bridge", "FATAL", 0, 0),
            ProgramInfo("gateway_sim", "gateway_sim", "EXITED", 0, 0),
        ),
        1,
    )
    assert statuses(facts(programs=table))["program bridge"] == "CRITICAL"
    stopped = ProgramTable((ProgramInfo("strategy", "strategy", "STOPPED", 0, 0),), 1)
    assert statuses(facts(programs=stopped))["program strategy"] == "WARNING"
    assert statuses(facts(programs=table, gateway="ib"))["program gateway_sim"] == "OK"
    assert statuses(facts(programs=None))["supervisord"] == "CRITICAL"
    assert statuses(facts(watchdog=None, watchdog_error="no heartbeat file"))["watchdog"] == "WARNING"
    stale = Heartbeat(program="watchdog", pid=11, state="WATCHING", started_ns=0, ts_ns=int((NOW - 60) * 1e9))
    assert statuses(facts(watchdog=stale))["watchdog"] == "WARNING"
    gave_up = Heartbeat(
        program="watchdog",
        pid=11,
        state="WATCHING",
        started_ns=0,
        ts_ns=int(NOW * 1e9),
        detail={"last_scan_ns": int(NOW * 1e9), "handed_off": ["features"]},
    )
    assert statuses(facts(watchdog=gave_up))["watchdog"] == "CRITICAL"


def test_the_watchdogs_age_is_read_on_the_monotonic_clock_when_both_ends_have_it() -> None:
    mono = 5_000 * 10**9  # the host's monotonic clock now
    fresh = facts().watchdog
    assert fresh is not None
    beat = msgspec.structs.replace(fresh, detail={**fresh.detail, "last_scan_mono_ns": mono - 2 * 10**9})
    for step in (-60.0, +60.0):  # the wall clock stepped a minute since the beat: nothing changes
        stepped = facts(now=NOW + step, now_mono_ns=mono, watchdog_mono_ns=mono - 10**9, watchdog=beat)
        assert statuses(stepped)["watchdog"] == "OK", step
    # a watchdog that really stopped beating a minute ago is stale whatever the wall clock says
    silent = facts(now=NOW - 60, now_mono_ns=mono, watchdog_mono_ns=mono - 60 * 10**9, watchdog=beat)
    assert statuses(silent)["watchdog"] == "WARNING"


def test_an_unreadable_socket_table_is_unknown_unless_something_worse_is_known() -> None:
    blind = Snapshot(PORT, NOW, table_readable=False)
    assert overall(checks(facts(snapshot=blind))) == "UNKNOWN"
    assert overall(checks(facts(snapshot=blind, programs=None))) == "CRITICAL"
    remote = checks(facts(snapshot=Snapshot(PORT, NOW), gateway_is_local=False, host="10.0.0.5"))
    assert [c.status for c in remote if c.name == "gateway listener"] == ["OK"]


def test_gateway_health_runs_without_supervisord_or_bridge_and_says_what_to_do(stack_env: Path) -> None:
    health = HEALTH
    env = {**os.environ, "IB_PORT": "14999"}
    started = time.monotonic()
    result = subprocess.run([str(health)], env=env, capture_output=True, text=True, timeout=30)
    took = time.monotonic() - started
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "gateway-health: CRITICAL (GATEWAY=sim, 127.0.0.1:14999)"
    assert any("supervisord" in ln and "not answering" in ln for ln in lines)
    assert any("bridge" in ln and "CRITICAL" in ln for ln in lines)
    assert any("nothing listens on port 14999" in ln for ln in lines)
    # every line that is not OK is followed by what to do
    for n, line in enumerate(lines[1:-1], start=1):
        if line.split()[0] in ("WARNING", "CRITICAL", "UNKNOWN"):
            assert lines[n + 1].strip().startswith("->"), line
    assert result.stderr == "" and took < 20


def test_gateway_health_rejects_an_unknown_option_in_one_line_and_unknown(stack_env: Path) -> None:
    health = HEALTH
    result = subprocess.run([str(health), "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 3
    [line] = result.stderr.splitlines()
    assert line.startswith("gateway-health: ") and "--frobnicate" in line and "--help" in line
    assert result.stdout == ""
    bad = subprocess.run(
        [str(health)], env={**os.environ, "IB_PORT": "nope"}, capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 78 and "IB_PORT" in bad.stderr and "Traceback" not in bad.stderr
