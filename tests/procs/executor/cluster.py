"""The real simulator, the real bridge and the real executor as subprocesses, for the executor's integration tests.

The test plays the strategy: it binds the strategy's PUB socket and publishes TargetPositions. Processes are
started and stopped by pid (terminate, then kill), even when the test fails; nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from procs.monitor.daybook import ledger_path, read_only
from shared.bus import Publisher, new_context, pub_endpoint, req_endpoint, request_once
from shared.config import Settings, load_settings
from shared.messages import (
    ExecutionsRequest,
    Fill,
    HealthRequest,
    PositionsRequest,
    Request,
    StatusRequest,
    TargetPosition,
)
from tests.support.sim import RunningSim, running_sim
from tests.support.wait import wait_for

D = Decimal
REPO = Path(__file__).resolve().parents[3]
PYTHON = REPO / ".venv" / "bin" / "python"

# Big orders so the simulator fills them in chunks of 500 shares (partial fills); fast timers.
BASE_ENV = {
    "GATEWAY": "sim",
    "TRADING_MODE": "paper",
    "IB_ACCOUNT": "DU1234567",
    "SYMBOLS": "AAPL,MSFT",
    "MARKET_HOURS": "regular",
    "HEARTBEAT_SECONDS": "0.5",
    "BRIDGE_HEARTBEAT_SECONDS": "1",
    "RECONNECT_BACKOFF_MAX": "1",
    "RECONCILE_SECONDS": "3",
    "POSITION_NOTIONAL": "500000",
    "MAX_POSITION_SHARES": "10000",
    "MAX_POSITION_NOTIONAL": "2000000",
    "MAX_ORDER_NOTIONAL": "2000000",
    "MAX_GROSS_EXPOSURE": "5000000",
    "MAX_ORDERS_PER_MINUTE": "1000",
    "LOG_LEVEL": "DEBUG",
}


@dataclass
class Cluster:
    home: Path
    sim: RunningSim
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _publisher: Publisher | None = None

    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The stack's settings as the child processes see them (loaded once from their environment)."""
        if self._settings is None:
            saved = dict(os.environ)
            try:
                os.environ.update(self.env)
                self._settings = load_settings()
            finally:
                os.environ.clear()
                os.environ.update(saved)
        return self._settings

    # ------------------------------------------------------------------ processes

    def start(self, program: str) -> subprocess.Popen[bytes]:
        out = open(self.home / f"{program}.out", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [str(PYTHON), "-m", f"procs.{program}"],
            cwd=REPO,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        self.procs[program] = proc
        return proc

    def signal(self, program: str, sig: signal.Signals) -> None:
        proc = self.procs[program]
        if proc.poll() is None:
            os.kill(proc.pid, sig)

    def kill(self, program: str) -> None:
        """SIGKILL, as a crash would: no cleanup of any kind."""
        self.signal(program, signal.SIGKILL)
        self.procs[program].wait(10)

    def stop(self, program: str) -> None:
        proc = self.procs.get(program)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # it may have been stopped by the test
        proc.terminate()
        try:
            proc.wait(8)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    # ------------------------------------------------------------------ requests

    def request(self, program: str, req: Request, timeout: float = 3.0) -> Any:
        reply = request_once(req_endpoint(self.settings, program), req, timeout=timeout)
        if not reply.ok:
            raise RuntimeError(f"{program} refused {type(req).__name__}: {reply.error}")
        return reply.result

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("executor", StatusRequest(), timeout=2.0)
        return result

    def wait_bridge_ready(self, timeout: float = 20.0) -> None:
        wait_for(
            "the bridge READY",
            lambda: self.request("bridge", HealthRequest(), 1.0)["state"] == "READY",
            timeout,
        )

    def wait_executor_ready(self, timeout: float = 20.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            st = self.status()
            quoted = set(st["quote_age_s"]) >= set(self.settings.symbols)
            return st if quoted and st["gateway"] == "READY" and st["state"] in ("READY", "HALTED") else None

        result: dict[str, Any] = wait_for("the executor synced, gateway READY, quotes in", ready, timeout)
        return result

    def broker_fills(self) -> list[Fill]:
        return msgspec.convert(self.request("bridge", ExecutionsRequest(since_ns=0), 5.0), list[Fill])

    # ------------------------------------------------------------------ the strategy's stream

    def publish_target(self, symbol: str, weight: float) -> None:
        if self._publisher is None:
            self._publisher = Publisher(new_context(), pub_endpoint(self.settings, "strategy"), "strategy")
        target = TargetPosition(
            symbol=symbol, weight=weight, reason="test", strategy="test", feature_end_ns=0
        )
        self._publisher.publish(f"target.{symbol}", target)

    def target_until(self, symbol: str, weight: float, done: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Publish a target until `done()` holds (a subscriber may join late); the target is idempotent."""

        def attempt() -> Any:
            self.publish_target(symbol, weight)
            return done()

        return wait_for(f"target {symbol} {weight} to take effect", attempt, timeout, interval=0.2)

    # ------------------------------------------------------------------ the ledger, read-only

    def ledger(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with read_only(ledger_path(self.settings.data_dir)) as conn:
            return list(conn.execute(sql, args))

    def orders(self, symbol: str | None = None) -> list[sqlite3.Row]:
        if symbol is None:
            return self.ledger("SELECT * FROM orders ORDER BY created_ns")
        return self.ledger("SELECT * FROM orders WHERE symbol=? ORDER BY created_ns", (symbol,))

    def log(self, program: str) -> str:
        path = self.settings.log_dir / f"{program}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for program in list(self.procs):
            self.stop(program)
        if self._publisher is not None:
            self._publisher.close()


def broker_positions(c: Cluster) -> dict[str, Decimal]:
    """The broker's stock positions by symbol (options and cash balances are other contracts, not these)."""
    out: dict[str, Decimal] = {}
    for p in c.request("bridge", PositionsRequest()):
        if p.get("sec_type", "STK") != "STK":
            continue
        out[p["symbol"]] = out.get(p["symbol"], D(0)) + D(str(p["quantity"]))
    return {s: q for s, q in out.items() if q != 0}


def our_broker_fills(c: Cluster, coid: str | None = None) -> list[Fill]:
    return [
        f
        for f in c.broker_fills()
        if f.client_order_id.startswith("ex-") and coid in (None, f.client_order_id)
    ]


def check_ledger_against_broker(c: Cluster) -> None:
    """The ledger is whole and agrees with the broker: every broker fill booked once, none invented, positions and
    cash add up, and no order reached the broker twice (one broker order per client order id, never filled
    beyond its quantity)."""
    with read_only(ledger_path(c.settings.data_dir)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        fills = list(conn.execute("SELECT * FROM fills WHERE replaced_by IS NULL"))  # corrections replace
        signed = {f["exec_id"]: D(f["quantity"]) * (1 if f["side"] == "BUY" else -1) for f in fills}
        by_symbol: dict[str, Decimal] = {}
        for f in fills:
            by_symbol[f["symbol"]] = by_symbol.get(f["symbol"], D(0)) + signed[f["exec_id"]]
        for a in conn.execute("SELECT * FROM adjustments"):  # the operator's accept-broker, audited
            by_symbol[a["symbol"]] = by_symbol.get(a["symbol"], D(0)) + D(a["broker"]) - D(a["ledger_before"])
        positions = {r["symbol"]: D(r["quantity"]) for r in conn.execute("SELECT * FROM positions")}
        assert {s: q for s, q in positions.items() if q} == {s: q for s, q in by_symbol.items() if q}
        for o in conn.execute("SELECT * FROM orders"):
            mine = [D(f["quantity"]) for f in fills if f["client_order_id"] == o["client_order_id"]]
            assert sum(mine, D(0)) == D(o["filled"]), o["client_order_id"]
        commissions = sum((D(f["commission"]) for f in fills if f["commission"] is not None), D(0))
        moved = sum((signed[f["exec_id"]] * D(f["price"]) for f in fills), D(0))
        (cash,) = conn.execute("SELECT cash FROM account").fetchone()
        adjusted = sum((D(a["cash_adjustment"]) for a in conn.execute("SELECT * FROM adjustments")), D(0))
        assert D(cash) == -moved - commissions + adjusted
        broker = our_broker_fills(c)
        assert sorted(signed) == sorted(f.exec_id for f in broker)  # every fill once, none invented
        assert {s: q for s, q in positions.items() if q} == broker_positions(c)
        quantity = {o["client_order_id"]: D(o["quantity"]) for o in conn.execute("SELECT * FROM orders")}
        placed: dict[str, set[int]] = {}
        filled: dict[str, Decimal] = {}
        for f in broker:
            placed.setdefault(f.client_order_id, set()).add(f.order_id)
            filled[f.client_order_id] = filled.get(f.client_order_id, D(0)) + f.quantity
        assert {coid: ids for coid, ids in placed.items() if len(ids) > 1} == {}, "an order placed twice"
        assert all(filled[coid] <= quantity[coid] for coid in filled), "an order filled beyond its quantity"
        refs = [o["order_ref"] for o in c.sim.status()["open_orders"] if o["order_ref"].startswith("ex-")]
        assert len(refs) == len(set(refs)), "two working orders at the broker under one client order id"


@contextlib.contextmanager
def running_cluster(
    home: Path, *, speed: float = 60.0, sim_args: tuple[str, ...] = (), env: Mapping[str, str] | None = None
) -> Iterator[Cluster]:
    """Simulator + bridge + executor in the stack home `home` (a short path: it holds ipc sockets)."""
    with running_sim(speed=speed, extra_args=sim_args) as sim:
        full = dict(os.environ)
        full.update(BASE_ENV)
        full.update(
            STACK_HOME=str(home),
            VAR_DIR=str(home / "var"),
            IB_PORT=str(sim.port),
            SIM_SPEED=str(speed),
            PYTHONPATH=str(REPO),
        )
        full.update(env or {})
        cluster = Cluster(home=home, sim=sim, env=full)
        try:
            cluster.start("bridge")
            cluster.start("executor")
            cluster.wait_bridge_ready()
            cluster.wait_executor_ready()
            yield cluster
        except BaseException:
            for program in ("executor", "bridge"):
                print(f"---- {program} log (tail)\n{cluster.log(program)[-4000:]}")
            raise
        finally:
            cluster.close()
