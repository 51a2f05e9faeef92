"""Reads the kernel's TCP table for the Gateway port: CLOSE_WAIT sockets by side, LISTEN owner, who holds what.

Read-only: it never connects to anything and never signals anything. On Linux it reads /proc/net/tcp{,6} and
keeps only the Gateway port's rows before decoding them (psutil.net_connections decodes every row and maps
every fd of every process: 65 ms at 5,000 sockets); process details come from psutil. Elsewhere it uses
psutil.net_connections. A socket whose owner cannot be read keeps pid None: the core then does nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import psutil

from procs.watchdog.model import CloseWait, Owner, Snapshot

_STATES = {"08": "CLOSE_WAIT", "0A": "LISTEN"}  # the only two states the watchdog looks at
_TABLES = (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6))


@dataclass(frozen=True, slots=True)
class Row:
    """One socket on the Gateway port, LISTEN or CLOSE_WAIT."""

    state: str
    local: tuple[str, int]
    remote: tuple[str, int]
    inode: int = 0  # /proc only; 0 for a socket no process holds any more
    pid: int | None = None  # psutil fallback only


def _address(hexaddr: str, family: int) -> tuple[str, int]:
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    # the kernel prints each 32-bit word in host (little-endian) order
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, packed), int(port, 16)


def read_proc_table(port: int, root: str = "") -> tuple[list[Row], int] | None:
    """Rows on `port` (LISTEN and CLOSE_WAIT) and the number of TCP sockets; None without /proc/net/tcp."""
    needle = f":{port:04X} "
    rows: list[Row] = []
    total = 0
    for path, family in _TABLES:
        try:
            with open(root + path) as fh:
                text = fh.read()
        except FileNotFoundError:
            if family == socket.AF_INET:
                return None
            continue  # IPv6 disabled
        total += max(0, text.count("\n") - 1)
        if needle not in text:
            continue  # the common case: nothing on the Gateway port in this table
        for line in text.splitlines()[1:]:
            if needle not in line:
                continue
            fields = line.split()
            state = _STATES.get(fields[3])
            if state is None:
                continue
            local, remote = _address(fields[1], family), _address(fields[2], family)
            if port in (local[1], remote[1]):
                rows.append(Row(state, local, remote, inode=int(fields[9])))
    return rows, total


def read_psutil_table(port: int) -> tuple[list[Row], int] | None:
    """The same rows from psutil.net_connections (non-Linux); None when the table cannot be read at all."""
    try:
        conns = psutil.net_connections("tcp")
    except psutil.AccessDenied:
        return None
    rows = []
    for c in conns:
        state = {psutil.CONN_CLOSE_WAIT: "CLOSE_WAIT", psutil.CONN_LISTEN: "LISTEN"}.get(c.status)
        local = (c.laddr.ip, c.laddr.port) if c.laddr else ("", 0)
        remote = (c.raddr.ip, c.raddr.port) if c.raddr else ("", 0)
        if state and port in (local[1], remote[1]):
            rows.append(Row(state, local, remote, pid=c.pid))
    return rows, len(conns)


def _pids(first: Iterable[int], everyone: bool) -> Iterator[int]:
    seen = set()
    for pid in first:
        if pid > 0 and pid not in seen:
            seen.add(pid)
            yield pid
    if everyone:
        for pid in psutil.pids():
            if pid not in seen:
                yield pid


def socket_holders(inodes: set[int], first: Iterable[int], everyone: bool) -> dict[int, set[int]]:
    """inode -> pids holding it. `first` pids are read in full; the rest only until every inode is found.

    A process whose fd table we may not read (another user's) is skipped: its sockets stay unattributed.
    """
    holders: dict[int, set[int]] = {}
    first = list(first)
    for n, pid in enumerate(_pids(first, everyone)):
        if n >= len(first) and inodes <= holders.keys():
            break
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone, or not ours to read
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and (inode := int(link[8:-1])) in inodes:
                holders.setdefault(inode, set()).add(pid)
    return holders


def read_owner(pid: int) -> Owner | None:
    """The process's identity, or None when it is gone; psutil.AccessDenied when it cannot be read."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            return Owner(
                pid=pid,
                name=proc.name(),
                exe=proc.exe(),
                uid=proc.uids().real,
                cmdline=tuple(proc.cmdline()),
                create_time=proc.create_time(),
            )
    except psutil.NoSuchProcess:
        return None


def take_snapshot(port: int, candidate_pids: Iterable[int] = (), *, all_owners: bool = False) -> Snapshot:
    """The Gateway port's CLOSE_WAIT and LISTEN sockets with their owners.

    `candidate_pids` (our supervised programs) are always read in full, so whether one of them holds the
    LISTEN socket is always known. Other processes are searched only when a CLOSE_WAIT needs an owner, or
    when `all_owners` asks for the LISTEN owner too (gateway-health).
    """
    candidates = [p for p in candidate_pids if p > 0]
    table = read_proc_table(port)
    if table is None:
        table = read_psutil_table(port)
        if table is None:
            return Snapshot(port, time.time(), table_readable=False, our_uid=os.getuid(), our_pid=os.getpid())
    rows, total = table
    by_inode = _holder_map(rows, candidates, all_owners)
    close_waits = tuple(
        CloseWait("gateway" if row.local[1] == port else "client", _text(row.local), _text(row.remote), pid)
        for row in rows
        if row.state == "CLOSE_WAIT"
        for pid in _pids_of(row, by_inode)
    )
    listen_pids = frozenset(
        p for row in rows if row.state == "LISTEN" for p in _pids_of(row, by_inode) if p is not None
    )
    wanted = {cw.pid for cw in close_waits if cw.pid} | listen_pids | set(candidates)
    owners, unreadable = {}, set()
    for pid in wanted:
        try:
            owner = read_owner(pid)
        except psutil.AccessDenied:
            unreadable.add(pid)
            continue
        if owner is not None:
            owners[pid] = owner
    return Snapshot(
        gateway_port=port,
        taken_at=time.time(),
        close_waits=close_waits,
        listening=any(row.state == "LISTEN" for row in rows),
        listen_pids=listen_pids,
        owners=owners,
        unreadable_pids=frozenset(unreadable),
        our_uid=os.getuid(),
        our_pid=os.getpid(),
        tcp_sockets=total,
    )


def _holder_map(rows: list[Row], candidates: list[int], all_owners: bool) -> dict[int, set[int]] | None:
    """inode -> pids for the rows' sockets (/proc only; None when the rows carry their pid already)."""
    inodes = {row.inode for row in rows if row.inode}
    if not inodes:
        return None
    search_all = all_owners or any(row.state == "CLOSE_WAIT" for row in rows)
    return socket_holders(inodes, candidates, search_all)


def _pids_of(row: Row, by_inode: dict[int, set[int]] | None) -> list[int | None]:
    """The pids holding `row`'s socket, [None] when no readable process does."""
    if by_inode is None:
        return [row.pid]
    pids: list[int | None] = [*sorted(by_inode.get(row.inode, ()))]
    return pids or [None]


def _text(addr: tuple[str, int]) -> str:
    ip, port = addr
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
