"""Account requests: positions, account updates (values and portfolio), account summary, multi-account updates,
managed accounts and ids; and the account messages the order routing pushes after a fill or a holding change.

Positions and portfolio lines are per contract: an untraded holding (an option, a currency) is its own line with its
own contract, never folded into a stock. Nothing here blocks or touches a socket directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from procs.gateway_sim import wire
from procs.gateway_sim.orders import PositionChanged
from procs.gateway_sim.wire_requests import req_id_at

if TYPE_CHECKING:
    from procs.gateway_sim.session import Session, SimServerPort

NEW_YORK = ZoneInfo("US/Eastern")
# IB's own client asks for these with a q (ibapi's AccountSummaryTags), ib_async with a g: answer the name asked for
SUMMARY_ALIASES = {"RegTEquity": "ReqTEquity", "RegTMargin": "ReqTMargin"}


def positions(session: Session, fields: list[str]) -> None:
    server = session.server
    session.subs.positions = True
    out = [position_message(server, p) for p in server.broker.positions()]
    out.append(wire.position_end())
    session.send(b"".join(out), len(out))


def cancel_positions(session: Session, fields: list[str]) -> None:
    session.subs.positions = False


def position_message(server: SimServerPort, p: PositionChanged) -> bytes:
    # an untraded holding has its own contract (an option, a currency pair); a traded stock is the table's
    contract = p.contract if p.contract is not None else server.contract_of(p.symbol)
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


def account_value_messages(server: SimServerPort) -> list[bytes]:
    acct = server.account
    values = [wire.account_value("AccountCode", acct, "", acct)]
    values += [
        wire.account_value(tag, value, cur, acct) for tag, value, cur in server.broker.account_values()
    ]
    return values


def portfolio_messages(server: SimServerPort, con_id: int | None) -> list[bytes]:
    """Portfolio lines of every contract held (or of the one with `con_id`), stocks marked to the market."""
    now = server.clock.now_ns()
    rows = server.broker.portfolio(lambda sym: server.market.price_at(sym, now))
    out = []
    for sym, stock_con_id, qty, price, value, avg_cost, unrealized, realized in rows:
        if con_id is None or stock_con_id == con_id:
            out.append(
                wire.portfolio_value(
                    server.contract_of(sym), qty, price, value, avg_cost, unrealized, realized, server.account
                )
            )
    for h in server.broker.holdings.all():
        if con_id is None or h.contract.con_id == con_id:
            value = float(h.market_value)
            out.append(
                wire.portfolio_value(
                    h.contract, h.quantity, float(h.mark), value, h.avg_cost, 0.0, 0.0, server.account
                )
            )
    return out


def portfolio_change(server: SimServerPort, p: PositionChanged) -> bytes:
    """The portfolio line of a position that changed; a holding that went gets a last line with 0 (which tells
    a client to drop it), as IB sends a closed position."""
    lines = portfolio_messages(server, p.con_id)
    if not lines and p.contract is not None:
        lines = [wire.portfolio_value(p.contract, p.position, 0.0, 0.0, p.avg_cost, 0.0, 0.0, p.account)]
    return b"".join(lines)


def account_updates_multi(session: Session, fields: list[str]) -> None:
    req_id = req_id_at(fields, 2, "reqAccountUpdatesMulti")
    session.subs.account_multi.add(req_id)
    out = multi_messages(session.server, req_id) + [wire.account_update_multi_end(req_id)]
    session.send(b"".join(out), len(out))


def multi_messages(server: SimServerPort, req_id: int) -> list[bytes]:
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
    values = {tag: (value, cur) for tag, value, cur in server.broker.account_values()}
    for tag, alias in SUMMARY_ALIASES.items():
        if tag in values and alias in tags:
            values[alias] = values[tag]
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


def push_account(server: SimServerPort, now_ns: int) -> None:
    """Changed account values go out every `account_push_seconds` of simulated time, as IB sends them every three
    minutes, not after each fill; positions and portfolio lines go out at once (handlers_orders.deliver)."""
    if not server.account_changed:
        return
    if now_ns - server.account_pushed_ns < server.config.account_push_seconds * 1e9:
        return
    server.account_changed = False
    server.account_pushed_ns = now_ns
    _send_account_values(server)


def _send_account_values(server: SimServerPort) -> None:
    values = b"".join(account_value_messages(server))
    stamp = wire.account_time(server.clock.now().astimezone(NEW_YORK).strftime("%H:%M"))
    for s in server.live_sessions():
        if s.subs.account:
            s.send(values + stamp)
        for req_id in s.subs.account_multi:
            s.send(b"".join(multi_messages(server, req_id)))


HANDLERS: dict[int, Callable[[Session, list[str]], None]] = {
    msg_id: wire.guarded(handler)
    for msg_id, handler in {
        6: account_updates,
        8: next_ids,
        15: ignore,
        17: managed_accounts,
        61: positions,
        62: account_summary,
        63: ignore,
        64: cancel_positions,
        76: account_updates_multi,
        77: cancel_account_updates_multi,
    }.items()
}
