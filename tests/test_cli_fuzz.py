"""Every bin/ command takes any argument list without a traceback and ends with an exit code it documents.

A property test calls each command's `main(argv)` in-process with random argument lists (random text, and
random bytes as the kernel hands them to Python: os.fsdecode with surrogateescape), stdout as strict UTF-8
like a real one. bin/trader talks to a stand-in executor on a real socket, so what it would send is really
encoded and sent; only what would reach past the arguments elsewhere is stubbed (starting supervisord, waiting
for health). A bounded number of real subprocesses check the worst inputs; a non-finite or non-positive
timeout is one line and exit 2 (gateway-health: 3, Nagios).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procs.watchdog.health import Facts
from procs.watchdog.model import Snapshot
from shared.bus import RequestServer, new_context, req_endpoint
from shared.config import load_settings
from shared.messages import (
    AcceptBrokerRequest,
    ExecutorRequest,
    FlattenRequest,
    OrdersRequest,
    PositionsRequest,
    ReconcileRequest,
)

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "bin"

# each command's documented exit codes (its usage docstring)
EXITS = {
    "stack": {0, 1, 2, 78},
    "trader": {0, 1, 2, 3, 78},
    "gateway-health": {0, 1, 2, 3, 78},
    "backtest": {0, 2, 65, 69, 73, 78},
    "gateway-sim-ctl": {0, 1, 2, 69},
}
USAGE_EXIT = {"gateway-health": 3}
# a usage error is one line (gateway-sim-ctl prints argparse's usage block and its command list: helper B's call)
ONE_LINE_USAGE = {"stack", "trader", "gateway-health", "backtest"}
WORDS = {
    "stack": ["start", "stop", "status", "--timeout", "--foreground"],
    "trader": [
        *("status", "positions", "orders", "--all", "halt", "resume", "flatten", "--wait"),
        *("reconcile", "accept-broker", "--reason", "--json", "--timeout", "AAPL", "msft", "TSLA"),
    ],
    "gateway-health": ["--json", "--wait", "--timeout"],
    "backtest": [
        *("--from-bridge", "--symbols", "--days", "--strategy", "--params", "--bar-seconds", "--notional"),
        *("--slippage-bps", "--commission", "--min-commission", "--png", "--trades", "bars.csv"),
    ],
    "gateway-sim-ctl": ["--port", "14002", "--control-dir", "--json", "--timeout", "status", "drop"],
}
NUMBERS = ["inf", "-inf", "nan", "0", "-1", "1e400", "0.5", "3", "1e309", "--"]


def _load(name: str) -> ModuleType:
    """The command's module (procs/cli/), where bin/<name> and the installed entry point find main()."""
    return importlib.import_module(f"procs.cli.{name.replace('-', '_')}")


def _quiet_facts() -> Facts:
    return Facts(
        now=0.0,
        gateway="sim",
        host="127.0.0.1",
        port=14002,
        gateway_is_local=True,
        snapshot=Snapshot(14002, 0.0),
        programs=None,
        bridge=None,
    )


STATUS = {"state": "RUNNING", "halted": False, "flattening": {}, "other_holdings": []}


async def _answer(req: Any) -> Any:
    """The executor's reply shapes, empty: enough for every command to render."""
    if isinstance(req, PositionsRequest | OrdersRequest):
        return []
    if isinstance(req, FlattenRequest):
        return {"halted": True, "orders": [], "flattening": {}}
    if isinstance(req, ReconcileRequest):
        return {"symbols": [], "other_holdings": [], "last_reconcile": "", "halted": False, "halt_reason": ""}
    if isinstance(req, AcceptBrokerRequest):
        return {
            "symbol": req.symbol,
            "ledger_before": "0",
            "broker": "0",
            "cash_adjustment": "0",
            "audit_id": 1,
        }
    return STATUS


@contextlib.contextmanager
def stand_in_executor() -> Iterator[None]:
    """A RequestServer on the executor's real endpoint (this process's STACK_HOME), in a thread of its own."""
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        ctx = new_context()
        server = RequestServer(ctx, req_endpoint(load_settings(), "executor"), ExecutorRequest, _answer)
        done = asyncio.Event()
        ready.set()
        task = asyncio.create_task(server.serve(done))
        while not stop.is_set():
            await asyncio.sleep(0.05)
        done.set()
        await task
        server.close()
        ctx.destroy(linger=0)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty stack home (this process's STACK_HOME) with only a stand-in executor up."""
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STACK_HOME", str(path))
        mp.setenv("SYMBOLS", "AAPL,MSFT")
        mp.delenv("VAR_DIR", raising=False)
        with stand_in_executor():
            yield path


@pytest.fixture(scope="module")
def commands(home: Path) -> Iterator[dict[str, Callable[[list[str]], Any]]]:
    """Each command's main(argv) in that home, with what reaches past the arguments elsewhere stubbed."""
    with pytest.MonkeyPatch.context() as mp:
        stack = _load("stack")
        mp.setattr(stack, "start", lambda *a, **k: 0)  # never a real supervisord from random arguments
        mp.setattr(stack, "stop", lambda *a, **k: 0)
        health = _load("gateway-health")
        mp.setattr(health, "gather", lambda *a, **k: _quiet_facts())
        mp.setattr(health, "overall", lambda found: "OK")  # a --wait of any length ends at once
        yield {
            "stack": stack.main,
            "trader": _load("trader").main,
            "gateway-health": health.main,
            "backtest": _load("backtest").main,
            "gateway-sim-ctl": _load("gateway-sim-ctl").main,
        }


def _call(main: Callable[[list[str]], Any], argv: list[str]) -> tuple[int, str]:
    """Exit code and stderr of main(argv), with a stdout that refuses what a real UTF-8 terminal would."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out.flush()
        err.flush()
    assert isinstance(code, int), f"main returned {code!r}"
    return code, err.buffer.getvalue().decode()


SUBCOMMANDS = {
    "stack": ["start", "stop", "status"],
    "trader": ["status", "positions", "orders", "halt", "resume", "flatten", "reconcile", "accept-broker"],
}
OPTIONS = {  # valid leading options, so that what follows them is reached too
    "stack": [["--timeout", "5"]],
    "trader": [["--json"], ["--timeout", "2"]],
    "gateway-health": [["--json"], ["--timeout", "0.2"]],
    "backtest": [["--from-bridge"], ["--days", "2"]],
    "gateway-sim-ctl": [["--port", "14002"], ["--json"]],
}


def _arguments(command: str) -> st.SearchStrategy[list[str]]:
    """Valid options, often a subcommand (so each one is reached), then anything."""
    no_nul = st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"])
    raw = st.binary(min_size=1, max_size=12).filter(lambda b: b"\x00" not in b).map(os.fsdecode)
    token = st.one_of(st.sampled_from(WORDS[command] + NUMBERS), st.text(no_nul, max_size=12), raw)
    options = st.lists(st.sampled_from(OPTIONS[command]), max_size=2).map(lambda g: [w for o in g for w in o])
    sub = st.sampled_from(SUBCOMMANDS.get(command, [""])).map(lambda w: [w] if w else [])
    parts = st.tuples(options, sub, st.lists(token, max_size=5))
    return parts.map(lambda p: p[0] + p[1] + p[2])


@pytest.mark.parametrize("command", sorted(EXITS))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_arguments_end_in_a_documented_exit_code_without_a_traceback(
    commands: dict[str, Callable[[list[str]], Any]], command: str, data: st.DataObject
) -> None:
    argv = data.draw(_arguments(command), label="argv")
    code, err = _call(commands[command], argv)
    assert code in EXITS[command], (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if command in ONE_LINE_USAGE and code == USAGE_EXIT.get(command, 2):
        assert len(err.strip().splitlines()) == 1, (argv, err)


BAD_TIMEOUTS = ["inf", "nan", "0", "-1"]
TIMEOUT_USERS = {
    "stack": ["status"],
    "trader": ["status"],
    "gateway-health": [],
    "gateway-sim-ctl": ["status"],
}


@pytest.mark.parametrize("command", sorted(TIMEOUT_USERS))
@pytest.mark.parametrize("value", BAD_TIMEOUTS)
def test_a_timeout_that_is_not_a_finite_positive_number_is_refused_in_one_line(
    commands: dict[str, Callable[[list[str]], Any]], command: str, value: str
) -> None:
    argv = ["--timeout", value, *TIMEOUT_USERS[command]]
    if command == "gateway-sim-ctl":
        argv = ["--port", "14002", *argv]
    code, err = _call(commands[command], argv)
    assert code == USAGE_EXIT.get(command, 2), (argv, code, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("code", "argv"),
    [
        (0, ["trader", "halt", b"\xff\xfe lunch"]),  # sent to the stand-in executor and answered
        (2, ["trader", "flatten", b"\xff"]),
        (2, ["trader", "accept-broker", b"\xc3", "--reason", b"\xff"]),
        (0, ["trader", "accept-broker", "aapl", "--reason", b"sold \xff by hand"]),
        (3, ["gateway-health", "--wait", "nan"]),
        (2, ["stack", b"\xff"]),
        (65, ["backtest", b"\xff.csv", "--symbols", b"\xfe"]),
        (69, ["gateway-sim-ctl", "--port", "14002", "--control-dir", b"\xff", "status"]),
    ],
    ids=lambda a: (
        a if isinstance(a, int) else " ".join(os.fsdecode(x) if isinstance(x, bytes) else x for x in a)
    ),
)
def test_real_processes_take_undecodable_bytes_without_a_traceback(
    home: Path, code: int, argv: list[str | bytes]
) -> None:
    env = {"STACK_HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "SYMBOLS": "AAPL,MSFT"}
    command = str(argv[0])
    done = subprocess.run(
        [sys.executable, str(BIN / command), *argv[1:]], env=env, capture_output=True, timeout=60
    )
    err = done.stderr.decode(errors="replace")
    assert done.returncode == code, err
    assert "Traceback" not in err, err
