"""The service harness every supervised program runs in: settings, logging, bus context, signals, heartbeats.

Start-up and recovery are one path (crash-only): a program's main coroutine runs until SIGTERM/SIGINT sets
`stop`, then every socket closes with LINGER 0 and the process exits 0. SIGHUP stops it the same way but exits
75, so supervisord starts it again (the watchdog's restart when supervisord cannot be asked). It must never
swallow a config error: that exits 78 (EX_CONFIG), which supervisord is told not to restart. Every file a
program creates is private (umask 077; 027 with FILE_GROUP), and it refuses to start while `.env` is not.

Exit codes: 0 stopped cleanly; 1 unexpected error (supervisord restarts it); 75 temporary failure or SIGHUP
(EX_TEMPFAIL, restarted); 78 configuration error (EX_CONFIG, not restarted: fix the setting).

A program that is also started alone from its own command line (the simulator) hands run_service a
`command_line` reader: its flags are read once the settings are (their defaults), before anything is created,
so a bad flag is one line and exit 2 or 78 and `--help` starts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import grp
import os
import signal
import stat
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from loguru import logger

from shared import exitcodes
from shared.bus import PUB_SOCKETS, BusPublisher, new_context, pub_endpoint
from shared.bus.factory import Bus, ZmqBus
from shared.config import ConfigError, Settings, check_env_file_private, file_umask, load_settings
from shared.log import setup_logging
from shared.messages import Heartbeat, Message
from shared.programs import SILENT_PROGRAMS

EXIT_OK = exitcodes.OK
EXIT_ERROR = exitcodes.ERROR
EXIT_TEMPFAIL = exitcodes.TEMPFAIL
EXIT_CONFIG = exitcodes.CONFIG

# the states in which a program does its work: the first one reached ends its start-up
WORKING_STATES = frozenset({"READY", "RUNNING", "WATCHING", "HALTED", "DEGRADED"})


class TemporaryFailure(Exception):
    """A program cannot start now but may later (its port is taken): one line, exit 75, supervisord retries."""


@dataclass(frozen=True)
class StartAlone:
    """What a program's own command line tells the harness before it starts (see `run_service`)."""

    options: Any  # the parsed command line; main finds it as svc.options
    log_dir: Path | None = None  # where its log file goes (None: the stack's var/log)
    # one copy per VAR_DIR; False where something else already guards it (the simulator: its port)
    single_instance: bool = True


def settle_heap() -> None:
    """Start-up is over: everything alive now (modules, calendars, warm-up data) leaves the collector's reach.

    A full collection walks the whole heap: ~20 ms in a process with ib_async, polars and pandas loaded, landing
    on whichever bar or order was in flight. After this, collections walk only what was made since. Garbage
    is collected first, so nothing collectable is frozen."""
    gc.collect()
    gc.freeze()


@dataclass
class Service:
    """What a program's main coroutine is given: its settings, its bus, stop event and health record."""

    program: str
    settings: Settings
    bus: Bus  # ZeroMQ in production and integration tests, memory in unit tests
    stop: asyncio.Event
    publisher: BusPublisher | None = None
    options: Any = None  # the program's parsed command line when it has one (StartAlone.options)
    state: str = "STARTING"
    counters: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    started_ns: int = field(default_factory=time.time_ns)
    settled: bool = False  # start-up is over and its heap frozen (settle_heap)

    def count(self, name: str, n: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def set_state(self, state: str) -> None:
        if state != self.state:
            logger.info("state {} -> {}", self.state, state)
            self.state = state
        if not self.settled and state in WORKING_STATES:
            self.settled = True
            settle_heap()

    def publish(self, topic: str, msg: Message) -> None:
        if self.publisher is not None:
            self.publisher.publish(topic, msg)

    def heartbeat(self) -> Heartbeat:
        return Heartbeat(
            program=self.program,
            pid=os.getpid(),
            state=self.state,
            started_ns=self.started_ns,
            counters=dict(self.counters),
            detail=dict(self.detail),
        )


Main = Callable[[Service], Awaitable[None]]
# reads a program's own command line once its settings are loaded; may exit (argparse: 0 for --help, 2 for a bad
# flag) or raise ConfigError (78)
CommandLine = Callable[[Settings], StartAlone]


MONOTONIC_FIELD = "mono_ns"  # in heartbeat files: time.monotonic_ns() when the beat was written


def heartbeat_file(settings: Settings, program: str) -> Path:
    """Where a program's last heartbeat is also written, so passive tools can read it without the bus."""
    return settings.run_dir / f"heartbeat-{program}.json"


class _Stamp(msgspec.Struct):
    mono_ns: int = 0  # MONOTONIC_FIELD


def read_heartbeat(settings: Settings, program: str) -> tuple[Heartbeat | None, str, int]:
    """A program's last heartbeat file, why there is none, and its monotonic stamp (0 when absent)."""
    path = heartbeat_file(settings, program)
    try:
        raw = path.read_bytes()
        return msgspec.json.decode(raw, type=Heartbeat), "", msgspec.json.decode(raw, type=_Stamp).mono_ns
    except FileNotFoundError:
        return None, f"no heartbeat file: the {program} is not running", 0
    except (OSError, msgspec.DecodeError) as exc:
        return None, f"unreadable heartbeat file {path}: {exc}", 0


def _write_heartbeat(path: Path, hb: Heartbeat) -> None:
    doc = msgspec.to_builtins(msgspec.structs.replace(hb, ts_ns=time.time_ns()))
    # a reader's age of this beat, immune to wall-clock steps: CLOCK_MONOTONIC is one clock for the whole host
    doc[MONOTONIC_FIELD] = time.monotonic_ns()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(doc))
    os.replace(tmp, path)


def prepare_var(settings: Settings) -> None:
    """VAR_DIR and its run/, log/, data/ exist and are private: 0700, or with FILE_GROUP the group may read
    log/ and data/ (0750 plus setgid, so every file made in them takes the group); run/ stays 0700 always.

    Files already there that are more open than that are closed down (an older stack's 0644 logs).
    ConfigError (one line) when the group cannot be given to the directories."""
    group = settings.file_group
    gid = grp.getgrnam(group).gr_gid if group else -1
    shared_mode = 0o2750 if group else 0o700
    for path, mode in (
        (settings.var_path, 0o750 if group else 0o700),
        (settings.run_dir, 0o700),
        (settings.log_dir, shared_mode),
        (settings.data_dir, shared_mode),
    ):
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            if group and path != settings.run_dir:
                os.chown(path, -1, gid)
            os.chmod(path, mode)
        except PermissionError as exc:
            need = f"own it and be in group {group!r} (FILE_GROUP)" if group else "own it (VAR_DIR)"
            raise ConfigError(f"cannot make {path} private ({exc.strerror}): you must {need}") from None
    too_open = 0o037 if group else 0o077  # the bits a file may not have beyond 0640 / 0600
    for top in (settings.log_dir, settings.data_dir):
        for root, _dirs, files in os.walk(top):
            for name in files:
                with contextlib.suppress(OSError):
                    st = os.stat(os.path.join(root, name), follow_symlinks=False)
                    if stat.S_ISREG(st.st_mode) and st.st_mode & too_open:
                        os.chmod(os.path.join(root, name), stat.S_IMODE(st.st_mode) & ~too_open)


async def _beat(svc: Service) -> None:
    period = svc.settings.heartbeat_seconds
    path = heartbeat_file(svc.settings, svc.program)
    expected = time.monotonic()
    while not svc.stop.is_set():
        # lag of this loop's own wake-up: a starved asyncio loop (CPU work on it) shows here first
        svc.counters["loop_lag_ms"] = round(max(0.0, time.monotonic() - expected) * 1000, 1)
        hb = svc.heartbeat()
        svc.publish(f"heartbeat.{svc.program}", hb)
        with contextlib.suppress(OSError):
            _write_heartbeat(path, hb)
        expected = time.monotonic() + period
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(svc.stop.wait(), period)


async def _run(
    program: str, settings: Settings, main: Main, handle_signals: bool, options: Any = None
) -> int:
    ctx = new_context()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    hung_up: list[bool] = []
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def come_back() -> None:
            # stop cleanly, but exit with a code supervisord does not expect, so it starts the program again
            hung_up.append(True)
            stop.set()

        loop.add_signal_handler(signal.SIGHUP, come_back)
    bus = ZmqBus(ctx)
    publisher = bus.publisher(pub_endpoint(settings, program), program) if program in PUB_SOCKETS else None
    svc = Service(
        program=program, settings=settings, bus=bus, stop=stop, publisher=publisher, options=options
    )
    # a program the registry lists as silent (the simulator) beats neither on the bus nor in a file
    beat = asyncio.create_task(_beat(svc) if program not in SILENT_PROGRAMS else stop.wait())
    settle_heap()  # the imports; the program's own start-up is settled when it first reaches a working state
    try:
        await main(svc)
        if hung_up:
            logger.info(
                "{} stopped by SIGHUP: exiting {} so supervisord starts it again", program, EXIT_TEMPFAIL
            )
            return EXIT_TEMPFAIL
        return EXIT_OK
    finally:
        stop.set()
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        if publisher is not None:
            publisher.close()
        ctx.destroy(linger=0)
        logger.info("{} stopped", program)


def _single_instance(settings: Settings, program: str) -> int | None:
    """Hold var/run/<program>.lock for the process's life; None when another live instance holds it.

    A second copy would silently take over the first one's ipc endpoints (split brain), so it must not start.
    The kernel drops the lock when the holder dies, even by SIGKILL, so a crash never leaves it stuck.
    """
    settings.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(settings.run_dir / f"{program}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def run_service(
    program: str, main: Main, *, handle_signals: bool = True, command_line: CommandLine | None = None
) -> int:
    """Run `main` as the supervised program `program`; returns the process exit code."""
    try:
        settings = load_settings()
        alone = command_line(settings) if command_line is not None else StartAlone(options=None)
        check_env_file_private()
        os.umask(file_umask(settings))
        prepare_var(settings)
    except ConfigError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if alone.single_instance and _single_instance(settings, program) is None:
        print(
            f"{program}: another {program} is already running for {settings.home}; not starting a second",
            file=sys.stderr,
        )
        return EXIT_TEMPFAIL
    setup_logging(program, settings, log_dir=alone.log_dir)
    logger.info("{} starting (pid {}, account {})", program, os.getpid(), settings.masked_account)
    try:
        return asyncio.run(_run(program, settings, main, handle_signals, alone.options))
    except ConfigError as exc:
        logger.info("configuration error: {}", exc)  # file only: stderr gets the one plain line below
        print(f"{program}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except TemporaryFailure as exc:
        logger.info("cannot start now: {}", exc)  # file only, as above
        print(f"{program}: {exc}", file=sys.stderr)
        return EXIT_TEMPFAIL
    except Exception:
        logger.exception("{} failed", program)
        return EXIT_ERROR
    finally:
        logger.complete()
