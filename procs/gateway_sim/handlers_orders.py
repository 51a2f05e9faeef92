"""Order requests, and the routing of the broker's events to the sessions that must hear them.

Orders from a read-only session get 321 and unknown contracts 200; the rest goes to the pure SimBroker, which
validates like a Gateway (103, 110, 201, 387); its events become openOrder/orderStatus/execDetails/commissionReport/
position/account messages, in the broker's order. Every placeOrder is written into the audit. Under `delay place`
the acknowledgement of a new order (and every later order message to that session) waits; the order works at once.
Nothing here blocks or touches a socket directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from loguru import logger

from procs.gateway_sim import handlers_account, wire, wire_orders
from procs.gateway_sim.audit import ReceivedOrder
from procs.gateway_sim.faults import error_text
from procs.gateway_sim.handlers_account import portfolio_change, position_message, push_account
from procs.gateway_sim.orders import (
    AccountChanged,
    Executed,
    OrderChanged,
    OrderRejected,
    PositionChanged,
    SimEvent,
    SimExecution,
    SimOrder,
)
from procs.gateway_sim.wire import WireError
from procs.gateway_sim.wire_requests import (
    OrderRequest,
    parse_cancel_order,
    parse_executions,
    parse_place_order,
)

if TYPE_CHECKING:
    from procs.gateway_sim.session import Session, SimServerPort

__all__ = ["HANDLERS", "deliver", "fill_orphan_orders", "push_account"]

NEW_YORK = ZoneInfo("US/Eastern")


def ib_time(t_ns: int) -> str:
    return (
        datetime.fromtimestamp(t_ns / 1e9, tz=UTC).astimezone(NEW_YORK).strftime("%Y%m%d %H:%M:%S US/Eastern")
    )


# ---------------------------------------------------------------------------------------------------- orders


def open_orders(session: Session, fields: list[str]) -> None:
    _send_open_orders(
        session, [o for o in session.server.broker.open_orders() if o.client_id == session.client_id]
    )


def all_open_orders(session: Session, fields: list[str]) -> None:
    _send_open_orders(session, session.server.broker.open_orders())


def _send_open_orders(session: Session, orders: list[SimOrder]) -> None:
    server = session.server
    out: list[bytes] = []
    for o in orders:
        contract = server.contract_of(o.symbol)
        out += [wire_orders.open_order(o, contract, version=session.version), wire_orders.order_status(o)]
    out.append(wire.open_order_end())
    session.send(b"".join(out), len(out))


def completed_orders(session: Session, fields: list[str]) -> None:
    server = session.server
    when = ib_time(server.clock.now_ns())
    out = [
        wire_orders.completed_order(o, server.contract_of(o.symbol), when, version=session.version)
        for o in server.broker.completed_orders()
    ]
    out.append(wire.completed_orders_end())
    session.send(b"".join(out), len(out))


def executions(session: Session, fields: list[str]) -> None:
    q = parse_executions(fields)
    server = session.server
    since = _filter_time_ns(q.time)
    out: list[bytes] = []
    for e in server.broker.executions(q.client_id or None, since):
        if (q.account and q.account != e.account) or (q.symbol and q.symbol != e.symbol):
            continue
        if q.side and q.side[:1] != {"BOT": "B", "SLD": "S"}.get(e.side, e.side)[:1]:
            continue
        out += execution_messages(server, q.req_id, e, session.version)
    out.append(wire.exec_details_end(q.req_id))
    session.send(b"".join(out), len(out))


def _filter_time_ns(text: str) -> int:
    if not text:
        return 0
    try:
        if "-" in text[:9]:
            t = datetime.strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        else:
            day, clock, *zone = text.split(" ", 2)
            t = datetime.strptime(day + clock, "%Y%m%d%H:%M:%S").replace(
                tzinfo=ZoneInfo(zone[0]) if zone else NEW_YORK
            )
    except (ValueError, KeyError):
        raise WireError(f"reqExecutions: time filter {text[:30]!r} is not 'YYYYMMDD HH:MM:SS'") from None
    return int(t.timestamp()) * 10**9


def execution_messages(server: SimServerPort, req_id: int, e: SimExecution, version: int) -> list[bytes]:
    contract = server.contract_of(e.symbol)
    return [
        wire_orders.exec_details(req_id, e, contract, ib_time(e.time_ns), version=version),
        wire.commission_report(
            e.exec_id, e.commission, "USD", float(e.realized_pnl) if e.realized_pnl else None
        ),
    ]


def place_order(session: Session, fields: list[str]) -> None:
    req = parse_place_order(fields, session.version)
    server = session.server
    new = server.audit.received(
        ReceivedOrder(
            order_id=req.order_id,
            client_id=session.client_id or 0,
            order_ref=req.order_ref,
            symbol=req.contract.symbol,
            action=req.action,
            quantity=req.total_qty,
            order_type=req.order_type,
            lmt_price=req.lmt_price,
            received_ns=time.time_ns(),
            position_before=server.broker.position(req.contract.symbol),
        )
    )
    if new:  # a new order's acknowledgement may be slow (delay place); a modify's queues behind what is held
        server.slow.hold_replies(session, "place", lambda: _place(session, req))
    else:
        server.slow.follow(session, "place", lambda: _place(session, req))


def _place(session: Session, req: OrderRequest) -> None:
    server = session.server
    oid = req.order_id
    server.allocate_order_id(oid)
    if server.faults.readonly:
        server.audit.rejected(oid, 321)
        session.error(oid, 321)
        return
    contract = server.resolve(req.contract)
    if contract is None:
        server.audit.rejected(oid, 200)
        session.error(oid, 200)
        return
    order = SimOrder(
        order_id=oid,
        client_id=session.client_id or 0,
        perm_id=0,
        account=req.account,
        symbol=contract.symbol,
        con_id=contract.con_id,
        action=req.action,
        total_qty=req.total_qty,
        order_type=req.order_type,
        lmt_price=req.lmt_price,
        aux_price=req.trail_stop_price if req.order_type == "TRAIL" else req.aux_price,
        tif=req.tif,
        order_ref=req.order_ref,
        trailing_pct=req.trailing_pct,
        oca_group=req.oca_group,
        outside_rth=req.outside_rth,
    )
    now = server.clock.now_ns()
    bid, ask, last, *_ = server.market.quote(contract.symbol, now)
    events = server.broker.place(order, last, now, bid, ask)
    if server.broker.order(oid) is None:
        server.audit.rejected(oid, next((e.code for e in events if isinstance(e, OrderRejected)), 0))
    deliver(server, events, session)


def cancel_order(session: Session, fields: list[str]) -> None:
    oid = parse_cancel_order(fields)
    server = session.server
    if server.faults.readonly:
        session.error(oid, 321)
        return
    deliver(server, server.broker.cancel(oid, server.clock.now_ns(), session.client_id), session)


def global_cancel(session: Session, fields: list[str]) -> None:
    server = session.server
    if server.faults.readonly:
        session.error(-1, 321)
        return
    for o in server.broker.open_orders():
        deliver(server, server.broker.cancel(o.order_id, server.clock.now_ns()))


# --------------------------------------------------------------------------------------------------- routing


def deliver(server: SimServerPort, events: Iterable[SimEvent], caller: Session | None = None) -> None:
    """Send each broker event to whoever must hear it, in the broker's order."""
    for ev in events:
        if isinstance(ev, OrderChanged):
            _order_changed(server, ev.order, caller)
        elif isinstance(ev, Executed):
            # Live execDetails go to the client that placed the order and to client 0 (IB's master client); a
            # manual order from TWS has client id 0, so only client-0 sessions hear it live -- every client still
            # finds it in reqExecutions and reqCompletedOrders, and its position and portfolio lines (below).
            for s in server.sessions_of(ev.execution.client_id):
                msgs = b"".join(execution_messages(server, -1, ev.execution, s.version))
                _send(server, s, msgs, 2)
        elif isinstance(ev, PositionChanged):
            pos = position_message(server, ev)
            folio = portfolio_change(server, ev)
            for s in server.live_sessions():
                if s.subs.positions:
                    _send(server, s, pos, 1)
                if s.subs.account and folio:
                    _send(server, s, folio, 1)
        elif isinstance(ev, AccountChanged):
            server.account_changed = True  # pushed by the market loop, as often as IB does (push_account)
        elif isinstance(ev, OrderRejected):
            target = caller if caller is not None else server.clients.get(_owner_of(server, ev.order_id))
            if target is not None:
                _send_error(server, target, ev)


def _send(server: SimServerPort, session: Session, data: bytes, count: int) -> None:
    """An order or account message, queued behind this session's held placeOrder answers (delay place)."""
    server.slow.follow(session, "place", lambda: session.send(data, count))


def _send_error(server: SimServerPort, session: Session, ev: OrderRejected) -> None:
    server.slow.follow(session, "place", lambda: session.error(ev.order_id, ev.code, ev.message))


def _order_changed(server: SimServerPort, o: SimOrder, caller: Session | None) -> None:
    contract = server.contract_of(o.symbol)
    status = wire_orders.order_status(o)
    for s in server.sessions_of(o.client_id):
        if o.status == "Cancelled":
            mine = s.client_id == o.client_id
            cancelled = wire.error(o.order_id, 202, error_text(202), version=s.version) if mine else b""
            _send(server, s, cancelled + status, 2)
        else:
            _send(server, s, wire_orders.open_order(o, contract, version=s.version) + status, 2)


def _owner_of(server: SimServerPort, order_id: int) -> int:
    for o in server.broker.open_orders():
        if o.order_id == order_id:
            return o.client_id
    return -1


def fill_orphan_orders(server: SimServerPort) -> list[int]:
    """Fill every working order whose client is not connected (at its limit, else at the market)."""
    now = server.clock.now_ns()
    filled: list[int] = []
    for o in server.broker.open_orders():
        if o.client_id in server.clients:
            continue
        last = server.market.price_at(o.symbol, now)
        price = float(o.lmt_price) if o.lmt_price is not None else last
        deliver(server, server.broker.fill_now(o.order_id, price, now))
        filled.append(o.order_id)
    if filled:
        logger.info("fill-while-disconnected: filled orders {} of absent clients", filled)
    return filled


def describe_order(o: SimOrder) -> dict[str, Any]:
    return {
        "order_id": o.order_id,
        "client_id": o.client_id,
        "perm_id": o.perm_id,
        "symbol": o.symbol,
        "action": o.action,
        "qty": str(o.total_qty),
        "type": o.order_type,
        "lmt": None if o.lmt_price is None else str(o.lmt_price),
        "aux": None if o.aux_price is None else str(o.aux_price),  # a stop's trigger (a TRAIL's as trailed)
        "status": o.status,
        "filled": str(o.filled),
        "order_ref": o.order_ref,
    }


HANDLERS: dict[int, Callable[[Session, list[str]], None]] = {
    **handlers_account.HANDLERS,
    **{
        msg_id: wire.guarded(handler)
        for msg_id, handler in {
            3: place_order,
            4: cancel_order,
            5: open_orders,
            7: executions,
            16: all_open_orders,
            58: global_cancel,
            99: completed_orders,
        }.items()
    },
}
