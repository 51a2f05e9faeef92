"""Account and order requests, and the routing of the broker's events to the sessions that must hear them.

Orders from a read-only session get 321 and unknown contracts 200; the rest goes to the pure SimBroker, which
validates like a Gateway (103, 110, 201, 387); its events become openOrder/orderStatus/execDetails/commissionReport/position/
account messages, in the broker's order. Nothing here blocks or touches a socket directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from loguru import logger

from procs.gateway_sim import wire, wire_orders
from procs.gateway_sim.broker import (
    AccountChanged,
    Executed,
    OrderChanged,
    OrderRejected,
    PositionChanged,
    SimEvent,
    SimExecution,
    SimOrder,
)
from procs.gateway_sim.faults import error_text
from procs.gateway_sim.wire import WireError
from procs.gateway_sim.wire_requests import (
    parse_cancel_order,
    parse_executions,
    parse_place_order,
    req_id_at,
)

if TYPE_CHECKING:
    from procs.gateway_sim.server import SimServer
    from procs.gateway_sim.session import Session

NEW_YORK = ZoneInfo("US/Eastern")
SUMMARY_EXTRAS = {"AccountType": ("INDIVIDUAL", ""), "Cushion": ("1", ""), "DayTradesRemaining": ("-1", "")}


def ib_time(t_ns: int) -> str:
    return (
        datetime.fromtimestamp(t_ns / 1e9, tz=UTC).astimezone(NEW_YORK).strftime("%Y%m%d %H:%M:%S US/Eastern")
    )


# --------------------------------------------------------------------------------------------------- account


def positions(session: Session, fields: list[str]) -> None:
    server = session.server
    session.subs.positions = True
    out = [position_message(server, p) for p in server.broker.positions()]
    out.append(wire.position_end())
    session.send(b"".join(out), len(out))


def cancel_positions(session: Session, fields: list[str]) -> None:
    session.subs.positions = False


def position_message(server: SimServer, p: PositionChanged) -> bytes:
    contract = server.contract_of(p.symbol)
    return wire.position(p.account, contract, p.position, p.avg_cost)


def account_updates(session: Session, fields: list[str]) -> None:
    subscribe = (fields[2] if len(fields) > 2 else "1") == "1"
    session.subs.account = subscribe
    if not subscribe:
        return
    server = session.server
    out = account_value_messages(server) + portfolio_messages(server, None)
    out.append(wire.account_time(server.clock.now().astimezone(NEW_YORK).strftime("%H:%M")))
    out.append(wire.account_download_end(server.account))
    session.send(b"".join(out), len(out))


def account_value_messages(server: SimServer) -> list[bytes]:
    acct = server.account
    values = [wire.account_value("AccountCode", acct, "", acct)]
    values += [
        wire.account_value(tag, value, cur, acct) for tag, value, cur in server.broker.account_values()
    ]
    return values


def portfolio_messages(server: SimServer, symbol: str | None) -> list[bytes]:
    now = server.clock.now_ns()
    rows = server.broker.portfolio(lambda sym: server.market.price_at(sym, now))
    out = []
    for sym, _con_id, qty, price, value, avg_cost, unrealized, realized in rows:
        if symbol is None or sym == symbol:
            out.append(
                wire.portfolio_value(
                    server.contract_of(sym), qty, price, value, avg_cost, unrealized, realized, server.account
                )
            )
    return out


def account_updates_multi(session: Session, fields: list[str]) -> None:
    req_id = req_id_at(fields, 2, "reqAccountUpdatesMulti")
    session.subs.account_multi.add(req_id)
    out = multi_messages(session.server, req_id) + [wire.account_update_multi_end(req_id)]
    session.send(b"".join(out), len(out))


def multi_messages(server: SimServer, req_id: int) -> list[bytes]:
    acct = server.account
    return [
        wire.account_update_multi(req_id, acct, tag, value, cur)
        for tag, value, cur in server.broker.account_values()
    ]


def cancel_account_updates_multi(session: Session, fields: list[str]) -> None:
    session.subs.account_multi.discard(req_id_at(fields, 2, "cancelAccountUpdatesMulti"))


def account_summary(session: Session, fields: list[str]) -> None:
    req_id = req_id_at(fields, 2, "reqAccountSummary")
    tags = {t.strip() for t in (fields[4] if len(fields) > 4 else "").split(",") if t.strip()}
    server = session.server
    values = {tag: (value, cur) for tag, value, cur in server.broker.account_values()} | SUMMARY_EXTRAS
    out = [
        wire.account_summary(req_id, server.account, tag, value, cur)
        for tag, (value, cur) in values.items()
        if not tags or tag in tags
    ]
    out.append(wire.account_summary_end(req_id))
    session.send(b"".join(out), len(out))


def managed_accounts(session: Session, fields: list[str]) -> None:
    session.send(wire.managed_accounts([session.server.account]))


def next_ids(session: Session, fields: list[str]) -> None:
    session.send(wire.next_valid_id(session.server.next_order_id))


def ignore(session: Session, fields: list[str]) -> None:
    """Requests that only switch something on the client's side (auto-bind, unsubscribe of a one-shot)."""


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
        out += [wire_orders.open_order(o, contract), wire_orders.order_status(o)]
    out.append(wire.open_order_end())
    session.send(b"".join(out), len(out))


def completed_orders(session: Session, fields: list[str]) -> None:
    server = session.server
    when = ib_time(server.clock.now_ns())
    out = [
        wire_orders.completed_order(o, server.contract_of(o.symbol), when)
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
        out += execution_messages(server, q.req_id, e)
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


def execution_messages(server: SimServer, req_id: int, e: SimExecution) -> list[bytes]:
    contract = server.contract_of(e.symbol)
    return [
        wire_orders.exec_details(req_id, e, contract, ib_time(e.time_ns)),
        wire.commission_report(
            e.exec_id, e.commission, "USD", float(e.realized_pnl) if e.realized_pnl else None
        ),
    ]


def place_order(session: Session, fields: list[str]) -> None:
    req = parse_place_order(fields)
    server = session.server
    oid = req.order_id
    server.allocate_order_id(oid)
    if server.faults.readonly:
        session.error(oid, 321)
        return
    contract = server.resolve(req.contract)
    if contract is None:
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
        aux_price=req.aux_price,
        tif=req.tif,
        order_ref=req.order_ref,
    )
    now = server.clock.now_ns()
    bid, ask, last, *_ = server.market.quote(contract.symbol, now)
    deliver(server, server.broker.place(order, last, now, bid, ask), session)


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


def deliver(server: SimServer, events: Iterable[SimEvent], caller: Session | None = None) -> None:
    """Send each broker event to whoever must hear it, in the broker's order."""
    for ev in events:
        if isinstance(ev, OrderChanged):
            _order_changed(server, ev.order, caller)
        elif isinstance(ev, Executed):
            msgs = execution_messages(server, -1, ev.execution)
            for s in server.sessions_of(ev.execution.client_id):
                s.send(b"".join(msgs), len(msgs))
        elif isinstance(ev, PositionChanged):
            pos = position_message(server, ev)
            folio = b"".join(portfolio_messages(server, ev.symbol))
            for s in server.live_sessions():
                if s.subs.positions:
                    s.send(pos)
                if s.subs.account and folio:
                    s.send(folio)
        elif isinstance(ev, AccountChanged):
            server.account_changed = True  # pushed by the market loop, as often as IB does (push_account)
        elif isinstance(ev, OrderRejected):
            target = caller if caller is not None else server.clients.get(_owner_of(server, ev.order_id))
            if target is not None:
                target.error(ev.order_id, ev.code, ev.message)


def _order_changed(server: SimServer, o: SimOrder, caller: Session | None) -> None:
    contract = server.contract_of(o.symbol)
    status = wire_orders.order_status(o)
    for s in server.sessions_of(o.client_id):
        if o.status == "Cancelled":
            cancelled = wire.error(o.order_id, 202, error_text(202)) if s.client_id == o.client_id else b""
            s.send(cancelled + status, 2)
        else:
            s.send(wire_orders.open_order(o, contract) + status, 2)


def push_account(server: SimServer, now_ns: int) -> None:
    """Changed account values go out every `account_push_seconds` of simulated time, as IB sends them every three
    minutes, not after each fill; positions and portfolio lines go out at once (deliver)."""
    if not server.account_changed:
        return
    if now_ns - server.account_pushed_ns < server.config.account_push_seconds * 1e9:
        return
    server.account_changed = False
    server.account_pushed_ns = now_ns
    _send_account_values(server)


def _send_account_values(server: SimServer) -> None:
    values = b"".join(account_value_messages(server))
    stamp = wire.account_time(server.clock.now().astimezone(NEW_YORK).strftime("%H:%M"))
    for s in server.live_sessions():
        if s.subs.account:
            s.send(values + stamp)
        for req_id in s.subs.account_multi:
            s.send(b"".join(multi_messages(server, req_id)))


def _owner_of(server: SimServer, order_id: int) -> int:
    for o in server.broker.open_orders():
        if o.order_id == order_id:
            return o.client_id
    return -1


def fill_orphan_orders(server: SimServer) -> list[int]:
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
        "status": o.status,
        "filled": str(o.filled),
        "order_ref": o.order_ref,
    }


HANDLERS: dict[int, Callable[[Session, list[str]], None]] = {
    msg_id: wire.guarded(handler)
    for msg_id, handler in {
        3: place_order,
        4: cancel_order,
        5: open_orders,
        6: account_updates,
        7: executions,
        8: next_ids,
        15: ignore,
        16: all_open_orders,
        17: managed_accounts,
        58: global_cancel,
        61: positions,
        62: account_summary,
        63: ignore,
        64: cancel_positions,
        76: account_updates_multi,
        77: cancel_account_updates_multi,
        99: completed_orders,
    }.items()
}
