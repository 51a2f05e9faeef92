"""The socket-table adapter on real loopback sockets: sides, IPv6-mapped addresses, owners, unreadable owners."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from procs.watchdog import snapshot as snapshot_module
from procs.watchdog.decide import decide
from procs.watchdog.model import Memory, ProgramInfo, ProgramTable, Rules
from procs.watchdog.snapshot import Row, read_proc_table, read_psutil_table, take_snapshot
from tests.procs.watchdog.watchkit import HELPERS, Listener, start_unsupervised, stop_process
from tests.support.stack import wait_for


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    try:
        yield server
    finally:
        server.close()


def _pair(listener: Listener) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(("127.0.0.1", listener.port))
    server, _ = listener.sock.accept()
    return client, server


def test_both_sides_are_classified_and_ipv6_mapped_sockets_are_seen(listener: Listener) -> None:
    a_client, a_server = _pair(listener)
    b_client, b_server = _pair(listener)
    a_server.close()  # A: the "Gateway" hung up, our client has not -> client-side CLOSE_WAIT
    b_client.close()  # B: our client hung up, the "Gateway" has not -> Gateway-side CLOSE_WAIT
    try:
        snap = wait_for(
            "two CLOSE_WAITs", lambda: (s := take_snapshot(listener.port)).close_waits[1:] and s, 5
        )
        me = os.getpid()
        client_side, gateway_side = snap.by_side("client"), snap.by_side("gateway")
        assert [(cw.pid, cw.remote.endswith(f":{listener.port}")) for cw in client_side] == [(me, True)]
        # the listener is dual-stack like a Java Gateway: its sockets are IPv4-mapped IPv6
        assert [(cw.pid, cw.local) for cw in gateway_side] == [(me, f"[::ffff:127.0.0.1]:{listener.port}")]
        assert snap.listening and snap.listen_pids == {me}
        owner = snap.owner(me)
        assert owner is not None and owner.is_python and not owner.is_java and owner.uid == os.getuid()
    finally:
        for s in (a_client, b_server):
            s.close()


def _close_waits(rows: list[Row]) -> list[tuple[str, tuple[str, int], tuple[str, int]]]:
    return sorted((r.state, r.local, r.remote) for r in rows if r.state == "CLOSE_WAIT")


def test_the_proc_reader_agrees_with_psutil(listener: Listener) -> None:
    pairs = [_pair(listener) for _ in range(3)]
    pairs[0][1].close()
    pairs[1][0].close()
    try:
        time.sleep(0.05)
        ours = read_proc_table(listener.port)
        theirs = read_psutil_table(listener.port)
        assert ours is not None and theirs is not None
        assert _close_waits(ours[0]) == _close_waits(theirs[0]) and len(_close_waits(ours[0])) == 2
        assert abs(ours[1] - theirs[1]) <= 10  # the whole table, give or take sockets opened meanwhile
    finally:
        for c, s in pairs:
            c.close()
            s.close()


def test_nothing_on_the_port_means_an_empty_snapshot_and_no_owner_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(psutil, "pids", lambda: pytest.fail("searched every process"))
    snap = take_snapshot(port, [os.getpid()])
    assert snap.close_waits == () and not snap.listening and snap.tcp_sockets > 0


def _scan_unprivileged(port: int, supervised_pid: int) -> dict[str, list[object]]:
    """Three watchdog scans in a forked child that cannot read the holder's /proc entries: run as root, the child
    drops to user nobody; run as anyone else, the holder made itself undumpable (its /proc files are root's).

    supervisord's table (given) lists `supervised_pid` as our bridge, so only the unreadable owner stands
    between the socket and a restart.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only the scan and the decision, then _exit
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            table = ProgramTable(
                (ProgramInfo("bridge", "bridge", "RUNNING", supervised_pid, time.time()),), 1
            )
            memory, decisions, seen = Memory(), [], []
            for _ in range(3):
                snap = take_snapshot(port, [supervised_pid])
                seen += [(cw.side, cw.pid) for cw in snap.close_waits]
                out, memory = decide(
                    snap, table, {}, memory, Rules(port, heartbeat_budget=60), time.time(), time.time()
                )
                decisions += [(d.action, d.rule) for d in out]
            os.write(write_end, json.dumps({"seen": seen, "decisions": decisions}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    return dict(json.loads(data))


def test_a_watchdog_that_cannot_read_the_socket_owner_reports_unknown_and_does_nothing(
    listener: Listener, short_tmp: Path
) -> None:
    holder = start_unsupervised(
        [
            *(sys.executable, str(HELPERS / "client_program.py"), "holder"),
            *("--connect", str(listener.port), "--undumpable"),
        ],
        short_tmp,
    )
    try:
        wait_for("the client connected", lambda: listener.accept_all() >= 1, 10)
        listener.close_sessions()
        wait_for("its CLOSE_WAIT", lambda: take_snapshot(listener.port).by_side("client"), 5)
        result = _scan_unprivileged(listener.port, holder.pid)
        assert result["seen"] == [["client", None]] * 3  # the socket is there, its owner is not readable
        assert result["decisions"] == [["UNKNOWN", "owner-unreadable"]]  # said once, nothing done
        assert holder.poll() is None
    finally:
        stop_process(holder)


def test_an_owner_whose_details_are_denied_is_unreadable(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, server = _pair(listener)
    server.close()
    try:
        wait_for("CLOSE_WAIT", lambda: take_snapshot(listener.port).by_side("client"), 5)

        def denied(pid: int) -> None:
            raise psutil.AccessDenied(pid)

        monkeypatch.setattr(snapshot_module, "read_owner", denied)
        snap = take_snapshot(listener.port)
        [cw] = snap.by_side("client")
        assert cw.pid == os.getpid() and snap.owner(cw.pid) is None and cw.pid in snap.unreadable_pids
    finally:
        client.close()


def test_the_socket_table_unreadable_is_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_module, "read_proc_table", lambda port: None)

    def denied(kind: str) -> None:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_connections", denied)
    snap = take_snapshot(14002)
    assert not snap.table_readable and snap.close_waits == ()
