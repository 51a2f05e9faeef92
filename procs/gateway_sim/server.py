"""The simulator's TCP server: the listening socket, the sessions, client ids, and the Gateway-wide fault actions.

It owns the exchange (clock, market, broker) and hands requests to the handler tables. It listens on loopback
only, and never on a real Gateway port (4001, 4002, 7496, 7497).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger

from procs.gateway_sim import handlers_market, handlers_orders, handlers_ticks, state_file, streams, wire
from procs.gateway_sim.audit import OrderAudit
from procs.gateway_sim.broker import SimBroker
from procs.gateway_sim.contracts import (
    SimContract,
    contract_by_con_id,
    find_contract,
    replay_contract,
)
from procs.gateway_sim.delays import KIND_OF_MESSAGE, SlowAnswers
from procs.gateway_sim.faults import FARM_OK_CODES, SILENT_MODES, Faults, error_text
from procs.gateway_sim.market import Market, SimClock, default_sim_start
from procs.gateway_sim.market_hours import wall_offset_ns
from procs.gateway_sim.session import Session
from procs.gateway_sim.sim_config import CLOCK_MODES as CLOCK_MODES
from procs.gateway_sim.sim_config import DEFAULT_ACCOUNT as DEFAULT_ACCOUNT
from procs.gateway_sim.sim_config import DEFAULT_PORT as DEFAULT_PORT
from procs.gateway_sim.sim_config import SimConfig as SimConfig
from procs.gateway_sim.wire_requests import ContractQuery
from shared.config_values import REAL_GATEWAY_PORTS
from shared.log import log_every

Handler = Callable[[Session, list[str]], None]
HANDLERS: dict[int, Handler] = {
    **handlers_market.HANDLERS,
    **handlers_orders.HANDLERS,
    **handlers_ticks.HANDLERS,
}


class SimServer:
    def __init__(self, config: SimConfig) -> None:
        if config.port in REAL_GATEWAY_PORTS:
            raise ValueError(
                f"port {config.port} belongs to a real Gateway/TWS; the simulator must use another"
            )
        self.config = config
        self.account = config.account
        self.faults = Faults(lazy_close=config.lazy_close, readonly=config.readonly, pacing=config.pacing)
        self.contracts = dict(config.contracts)
        for symbol, bars in (config.replay or {}).items():
            if symbol not in self.contracts and bars:
                self.contracts[symbol] = replay_contract(symbol, bars[0].open)
        offset = 0
        if config.clock == "wall":  # real time at real speed; the prices of a session when the market is shut
            offset = wall_offset_ns(datetime.now(UTC))
            self.clock = SimClock(start=None, speed=1.0)
        else:
            start = config.start or default_sim_start(datetime.now(UTC))
            self.clock = SimClock(start=start, speed=config.speed)
        replay = dict(config.replay or {}) or None
        self.market = Market(self.contracts, seed=config.seed, replay=replay, offset_ns=offset)
        self.broker = SimBroker(config.account, cash=config.cash, contracts=self.contracts)
        self.next_order_id = 1
        if config.state_file is not None:  # StateFileError (one line) when the kept account cannot be read
            kept = state_file.load(config.state_file, config.account)
            if kept is not None:
                self.next_order_id = state_file.restore(self.broker, kept)
                logger.info("account {} resumed from {}", config.account, config.state_file)
        self.audit = OrderAudit()
        self.slow = SlowAnswers(self.faults)  # `delay KIND SECONDS`
        self.sessions: set[Session] = set()
        self.clients: dict[int, Session] = {}
        self.port = config.port
        self.account_changed = (
            False  # account values changed since the last push (handlers_orders.push_account)
        )
        self.account_pushed_ns = self.clock.now_ns()
        self.started_at = time.time()
        self._listener: asyncio.Server | None = None
        self._not_silent = asyncio.Event()
        self._not_silent.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._bad_input_count = 0

    # ------------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await self._listen()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(streams.run_market_loop(self), name="gateway-sim-market"))
        self._tasks.append(loop.create_task(self._housekeeping(), name="gateway-sim-housekeeping"))
        if self.config.state_file is not None:
            keeper = state_file.keep_state(self.kept_state, self.config.state_file)
            self._tasks.append(loop.create_task(keeper, name="gateway-sim-state-file"))
        logger.info(
            "gateway simulator listening on {}:{} (server version {}, account {}, speed {}x, sim time {}, "
            "{} clock, prices {} s behind)",
            self.config.host,
            self.port,
            wire.SERVER_VERSION,
            self.account,
            self.clock.speed,
            self.clock.now().isoformat(timespec="seconds"),
            self.config.clock,
            self.market.offset_ns // 10**9,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        if self.config.state_file is not None:  # the last changes, which the keeper may not have written yet
            try:
                state_file.write_atomically(self.config.state_file, self.kept_state())
            except OSError as exc:
                logger.error("state file {}: cannot write: {}", self.config.state_file, exc.strerror or exc)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for session in list(self.sessions):
            session.close()
        await asyncio.sleep(0)

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            lambda: Session(self), self.config.host, self.port, reuse_address=True, backlog=64
        )
        self.port = self._listener.sockets[0].getsockname()[1]

    async def set_listening(self, on: bool) -> None:
        """listen off closes the listening socket (new connects are refused); sessions stay."""
        if on and self._listener is None:
            await self._listen()
        elif not on and self._listener is not None:
            self._listener.close()
            self._listener = None
        self.faults.listening = on

    def kept_state(self) -> dict[str, Any]:
        return state_file.snapshot(self.broker, self.next_order_id)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for session in list(self.sessions):
                if now - session.last_data > 30 and session.pending_bytes and not session.zombie:
                    session.reject("truncated frame: no more bytes for 30 s")

    # ------------------------------------------------------------------------------------------- sessions

    def on_connect(self, session: Session) -> None:
        self.sessions.add(session)
        logger.debug("connection from port {}", session.peer[1])

    def claim_client_id(self, session: Session, client_id: int) -> bool:
        holder = self.clients.get(client_id)
        if holder is not None and holder is not session:
            return False
        self.clients[client_id] = session
        return True

    def on_api_start(self, session: Session) -> None:
        order_id = self.next_order_id
        if self.faults.next_id_rollback is not None:
            order_id, self.faults.next_id_rollback = self.faults.next_id_rollback, None
            logger.info("next-id-rollback: {} gets nextValidId {}", session.name, order_id)
        session.send(wire.managed_accounts([self.account]) + wire.next_valid_id(order_id), 2)
        for code in self.farm_codes():
            session.error(-1, code)
        session_log(session, "api-start", f"API started (server version {session.version})")

    def farm_codes(self) -> list[int]:
        f = self.faults
        return [
            2103 if f.market_farm_down else FARM_OK_CODES[0],
            2105 if f.hmds_farm_down else FARM_OK_CODES[1],
        ] + [FARM_OK_CODES[2]]

    def on_leave(self, session: Session) -> None:
        """The client is gone (or lazy-closed): release its id, stop its streams, maybe fill its orders."""
        if session.client_id is not None and self.clients.get(session.client_id) is session:
            del self.clients[session.client_id]
            if self.faults.fill_while_disconnected:
                asyncio.get_running_loop().call_later(0.05, self._fill_orphans_if_armed)
        session.subs.clear_market_data()

    def on_disconnect(self, session: Session, exc: Exception | None) -> None:
        self.sessions.discard(session)
        self.slow.forget(session)
        how = f" ({type(exc).__name__})" if exc else ""
        session_log(session, "closed", f"closed{how}")

    def dispatch(self, session: Session, msg_id: int, fields: list[str]) -> None:
        handler = HANDLERS.get(msg_id)
        if handler is None:
            self.log_bad_input(session, f"request id {msg_id} is not simulated; ignored", close=False)
            return
        kind = KIND_OF_MESSAGE.get(msg_id)
        if (
            kind is None or kind == "place"
        ):  # a slow placeOrder is accepted at once (handlers_orders.place_order)
            handler(session, fields)
            return
        self.slow.answer(session, kind, lambda: handler(session, fields))

    def log_bad_input(self, session: Session, problem: str, *, close: bool = True) -> None:
        self._bad_input_count += 1
        suffix = "; session closed" if close else ""
        log_every(f"bad-input:{problem[:40]}", 10.0, "WARNING", f"session {session.name}: {problem}{suffix}")

    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions if s.live]

    def sessions_of(self, client_id: int) -> list[Session]:
        """Who hears about an order: its owner, and client 0 (the master client binds every order)."""
        out = [s for s in self.sessions if s.live and s.client_id in (client_id, 0)]
        return out

    # ----------------------------------------------------------------------------------------------- helpers

    def resolve(self, q: ContractQuery) -> SimContract | None:
        shift = self.market.offset_ns
        now = self.clock.now() - timedelta(microseconds=shift // 1000)  # the price path's time
        if q.con_id:
            c = contract_by_con_id(q.con_id, now=now, shift_ns=shift, table=self.contracts)
            if c is None or (q.symbol and q.symbol != c.symbol):
                return None
            return c
        if not q.symbol and not q.local_symbol:
            return None
        return find_contract(
            q.symbol,
            q.sec_type,
            q.currency,
            q.exchange,
            local_symbol=q.local_symbol,
            now=now,
            shift_ns=shift,
            table=self.contracts,
        )

    def contract_of(self, symbol: str) -> SimContract:
        return self.contracts[symbol]

    def connection_time_text(self) -> str:
        return datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")

    async def wait_not_silent(self) -> None:
        await self._not_silent.wait()

    def allocate_order_id(self, order_id: int) -> None:
        self.next_order_id = max(self.next_order_id, order_id + 1)

    # ---------------------------------------------------------------------------------------- fault actions

    def set_silent(self, mode: str) -> None:
        if mode not in SILENT_MODES:
            raise ValueError(f"silent mode must be one of {', '.join(SILENT_MODES)}")
        self.faults.silent = mode
        if mode == "on":
            self._not_silent.clear()
        else:
            self._not_silent.set()

    def drop_all(self) -> int:
        """Close every session with FIN (zombies included)."""
        victims = list(self.sessions)
        for session in victims:
            session.close()
        return len(victims)

    def reset_all(self) -> int:
        victims = list(self.sessions)
        for session in victims:
            session.reset()
        return len(victims)

    def broadcast_error(self, code: int, req_id: int = -1, message: str | None = None) -> int:
        """An error to every session; one whose reqId is an order's id goes to that order's client only (as IB
        sends it), and leaves the order working: order-scoped codes such as 10349, 161 and 10311 are notices."""
        order = self.broker.order(req_id) if req_id != -1 else None
        state = order.status if order is not None else ""
        text = message or error_text(code, port=self.port, req=req_id, state=state)
        lost = self.faults.apply_code(code) if req_id == -1 else False
        targets = self.live_sessions()
        if order is not None:
            targets = [s for s in targets if s.client_id == order.client_id]
        for session in targets:
            session.error(req_id, code, text)
            if lost:
                session.subs.clear_market_data()
        return len(targets)

    def fill_while_disconnected(self) -> dict[str, Any]:
        filled = handlers_orders.fill_orphan_orders(self)
        if filled:
            return {"filled_order_ids": filled}
        self.faults.fill_while_disconnected = True
        return {"armed": True}

    def _fill_orphans_if_armed(self) -> None:
        if self.faults.fill_while_disconnected and handlers_orders.fill_orphan_orders(self):
            self.faults.fill_while_disconnected = False

    def close_zombies(self) -> int:
        zombies = [s for s in self.sessions if s.zombie]
        for session in zombies:
            session.close()
        return len(zombies)

    def status(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "account": self.account,
            "server_version": wire.SERVER_VERSION,
            "listening": self._listener is not None,
            "sim_time": self.clock.now().isoformat(timespec="milliseconds"),
            "speed": self.clock.speed,
            "clock": self.config.clock,
            "uptime_s": round(time.time() - self.started_at, 3),
            "sessions": [s.describe() for s in sorted(self.sessions, key=lambda s: s.connected_at)],
            "open_orders": [handlers_orders.describe_order(o) for o in self.broker.open_orders()],
            "faults": self.faults.describe(),
            "bad_input": self._bad_input_count,
            "next_order_id": self.next_order_id,
            # the traded stock positions, straight from the books (tests watch them without the bridge)
            "positions": {
                s: str(h.position) for s, h in sorted(self.broker.books.holdings.items()) if h.position
            },
            "holdings": [
                {"symbol": h.contract.symbol, "sec_type": h.contract.sec_type, "qty": str(h.quantity)}
                for h in self.broker.holdings.all()
            ],
        }


def session_log(session: Session, kind: str, text: str) -> None:
    """One line per session event, at most one a second per client id and kind: a reconnect storm stays readable."""
    log_every(f"session-{kind}:{session.client_id}", 1.0, "INFO", f"session {session.name}: {text}")
