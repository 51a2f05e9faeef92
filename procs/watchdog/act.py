"""Carries out the core's RESTART decisions: through supervisord's XML-RPC, else hang-up-then-kill.

Thin on purpose: whether a program may be restarted was decided in decide.py. This module only restarts the
pid it was given, re-checks that the pid is still that program (pid reuse), and honours WATCHDOG_DRY_RUN.
Without supervisord's XML-RPC the program is ended so that supervisord starts it again: SIGHUP (the service
harness stops cleanly and exits 75, which supervisord does not expect) and, if ignored, SIGKILL (a death by
signal, which supervisord does not expect either); SIGTERM would exit 0 and leave it down.
It never signals anything but the one process a decision names.
"""

from __future__ import annotations

import contextlib
import http.client
import signal
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import psutil
from loguru import logger

from procs.watchdog.model import Decision, ProgramInfo, ProgramTable
from shared.supervisor import supervisor_rpc

_NOT_RUNNING = 70  # supervisor.xmlrpc.Faults
_ALREADY_STARTED = 60
_STOPPED_STATES = frozenset({"STOPPED", "EXITED", "FATAL"})
# supervisord is unreachable or broken: the only errors that justify the terminate-then-kill fallback
TransportError = (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError)


class Supervisor:
    """supervisord over its unix socket, a fresh proxy per call (a proxy is not reusable after an error)."""

    def __init__(self, socket_path: Path, timeout: float = 2.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def rpc(self) -> Any:
        return supervisor_rpc(self.socket_path, self.timeout).supervisor

    def table(self) -> ProgramTable | None:
        """Our programs and supervisord's pid; None when supervisord does not answer."""
        try:
            infos = self.rpc().getAllProcessInfo()
            pid = int(self.rpc().getPID())
        except (*TransportError, xmlrpc.client.Fault) as exc:
            logger.debug("supervisord unreachable: {}", exc)
            return None
        return ProgramTable(tuple(ProgramInfo.from_rpc(i) for i in infos), pid)

    def state(self, namespec: str) -> ProgramInfo:
        return ProgramInfo.from_rpc(self.rpc().getProcessInfo(namespec))


def restart(sup: Supervisor, decision: Decision, *, dry_run: bool, stop_timeout: float = 60.0) -> str:
    """Restart the decision's program; returns what happened, in words for the log and the alert.

    Blocks until the program has stopped (at most `stop_timeout`), so the loop scans again only afterwards.
    """
    if decision.action != "RESTART" or not decision.program or not decision.pid:
        raise ValueError(f"not a restart of a named program and pid: {decision}")
    if dry_run:
        return "dry run: not restarted (WATCHDOG_DRY_RUN=true)"
    try:
        return _restart_through_supervisord(sup, decision.program, decision.pid, stop_timeout)
    except xmlrpc.client.Fault as exc:
        return f"not restarted: supervisord refused ({exc.faultString})"
    except TransportError as exc:
        create_time = float(decision.evidence.get("create_time", 0.0))
        return f"supervisord failed ({exc!r}); " + hang_up_then_kill(decision.pid, create_time)


def left_running(outcome: str) -> bool:
    """Whether a restart's outcome ended nothing (dry run, refused, skipped, not ours to signal)."""
    return outcome.startswith(("dry run", "skipped", "not restarted: supervisord refused")) or (
        "no permission" in outcome
    )


def _restart_through_supervisord(sup: Supervisor, namespec: str, pid: int, stop_timeout: float) -> str:
    if sup.state(namespec).pid != pid:
        return "skipped: it has a new pid already"
    try:
        sup.rpc().stopProcess(namespec, False)
    except xmlrpc.client.Fault as exc:
        if exc.faultCode != _NOT_RUNNING:
            raise
    # a frozen (SIGSTOPped) process cannot act on the SIGTERM just sent; CONT lets it stop cleanly now
    # instead of after stopwaitsecs and a SIGKILL
    with contextlib.suppress(xmlrpc.client.Fault):
        sup.rpc().signalProcess(namespec, "CONT")
    deadline = time.monotonic() + stop_timeout
    while (state := sup.state(namespec).state) not in _STOPPED_STATES:
        if time.monotonic() > deadline:
            return f"not restarted: still {state} after {stop_timeout:g}s"
        time.sleep(0.1)
    try:
        sup.rpc().startProcess(namespec, False)
    except xmlrpc.client.Fault as exc:
        if exc.faultCode != _ALREADY_STARTED:  # it is down now: the comeback rule will say so
            return f"stopped, but supervisord refused to start it ({exc.faultString})"
    return "restarted through supervisord"


def hang_up_then_kill(pid: int, create_time: float, wait: float = 5.0) -> str:
    """SIGHUP, wait, SIGKILL, only if `pid` is still the process first seen (same creation time).

    Either way supervisord sees an exit it does not expect (75, or death by signal) and starts it again."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 0.01:
            return f"not killed: pid {pid} is now another process"
        # psutil re-checks pid reuse (pid + creation time) before every signal
        proc.send_signal(signal.SIGHUP)
        proc.resume()  # a frozen process only acts on SIGHUP once continued
        try:
            proc.wait(wait)
            return "ended by SIGHUP (supervisord starts it again)"
        except psutil.TimeoutExpired:
            if proc.is_running():  # same object: still the same process
                proc.kill()
            return "killed after SIGHUP was ignored (supervisord starts it again)"
    except psutil.NoSuchProcess:
        return "already gone"
    except psutil.AccessDenied:
        return f"not killed: no permission to signal pid {pid}"
