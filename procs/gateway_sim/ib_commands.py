"""Control commands that make the simulated account behave like an IB account: execution corrections, a human's
orders from TWS, holdings the stack does not trade, slow answers, and the audit.

Each command checks all its arguments before it changes anything, so a usage error (one line) leaves the simulator
as it was. What a command changes reaches the sessions only through the order routing (handlers_orders.deliver).
The CLI imports this module for its help text, outside the venv too: heavy modules are imported inside commands.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from procs.gateway_sim.audit import ReceivedOrder
from procs.gateway_sim.command_args import CommandError, Refused, one_number, positive_decimal
from procs.gateway_sim.faults import DELAY_KINDS
from procs.gateway_sim.orders import Executed, SimOrder

if TYPE_CHECKING:
    from procs.gateway_sim.contracts import SimContract
    from procs.gateway_sim.server import SimServer

MAX_DELAY_SECONDS = 3600.0


def _deliver(server: SimServer, events: list[Any]) -> None:
    from procs.gateway_sim.handlers_orders import deliver  # the routing imports the server's world; late

    deliver(server, events)


# ---------------------------------------------------------------------------------------------- corrections


async def correct_execution(server: SimServer, argv: list[str]) -> dict[str, Any]:
    name, usage = "correct-execution", "EXEC_ID [PRICE|-] [QUANTITY]"
    if not 1 <= len(argv) <= 3:
        raise CommandError(f"usage: {name} {usage}   (- keeps the price; default: unchanged)")
    exec_id = argv[0]
    if exec_id.count(".") < 1 or not exec_id.replace(".", "").isalnum():
        raise CommandError(
            f"{name}: {exec_id!r} is not an execId like 0000e0d5.6578a0b1.01.01; usage: {name} {usage}"
        )
    price = None
    if len(argv) > 1 and argv[1] != "-":
        price = positive_decimal(argv[1], name, "PRICE", usage)
    quantity = positive_decimal(argv[2], name, "QUANTITY", usage) if len(argv) > 2 else None
    try:
        events = server.broker.correct_execution(exec_id, price, quantity)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    _deliver(server, events)
    new = next(e.execution for e in events if isinstance(e, Executed))
    return {
        "replaced": exec_id,
        "exec_id": new.exec_id,
        "order_id": new.order_id,
        "price": str(new.price),
        "quantity": str(new.shares),
        "position": str(server.broker.position(new.symbol)),
    }


# ------------------------------------------------------------------------------------------- manual orders


async def manual_order(server: SimServer, argv: list[str]) -> dict[str, Any]:
    """A human's market order from TWS: client id 0, no orderRef, filled at once at the current price."""
    name, usage = "manual-order", "SYMBOL BUY|SELL QTY"
    if len(argv) != 3:
        raise CommandError(f"usage: {name} {usage}")
    symbol, action = argv[0].upper(), argv[1].upper()
    contract = server.contracts.get(symbol)
    if contract is None:
        raise CommandError(f"{name}: {argv[0]!r} is not a stock the simulator trades; usage: {name} {usage}")
    if action not in ("BUY", "SELL"):
        raise CommandError(f"{name}: {argv[1]!r} is not BUY or SELL; usage: {name} {usage}")
    qty = positive_decimal(argv[2], name, "QTY", usage)
    broker = server.broker
    order = SimOrder(
        order_id=broker.next_manual_order_id(),
        client_id=0,
        perm_id=0,
        account="",
        symbol=symbol,
        con_id=contract.con_id,
        action=action,
        total_qty=qty,
        order_type="MKT",
        lmt_price=None,
        aux_price=None,
        tif="DAY",
        order_ref="",
    )
    server.audit.received(
        ReceivedOrder(
            order.order_id, 0, "", symbol, action, qty, "MKT", None, time.time_ns(), broker.position(symbol)
        )
    )
    now = server.clock.now_ns()
    bid, ask, last, *_ = server.market.quote(symbol, now)
    _deliver(server, broker.place(order, last, now, bid, ask))
    placed = broker.order(order.order_id)
    assert placed is not None  # a MKT order of a known stock with a positive size is always accepted
    return {
        "order_id": placed.order_id,
        "perm_id": placed.perm_id,
        "status": placed.status,
        "filled": str(placed.filled),
        "avg_price": str(placed.avg_fill_price),
        "position": str(broker.position(symbol)),
    }


async def cancel_order(server: SimServer, argv: list[str]) -> dict[str, Any]:
    """A human cancelling an order in TWS: any client's working order, by its order id."""
    name, usage = "cancel-order", "ORDER_ID"
    if len(argv) != 1 or not argv[0].isdigit():
        raise CommandError(f"usage: {name} {usage}")
    order = server.broker.order(int(argv[0]))
    if order is None or not order.is_working:
        raise Refused(f"{name}: order {argv[0]} is not a working order")
    _deliver(server, server.broker.cancel(order.order_id, server.clock.now_ns()))
    return {"order_id": order.order_id, "order_ref": order.order_ref, "status": "Cancelled"}


async def gap(server: SimServer, argv: list[str]) -> dict[str, Any]:
    """An overnight gap: the symbol's price moves by PERCENT at once; resting orders it reaches fill beyond."""
    name, usage = "gap", "SYMBOL PERCENT"
    if len(argv) != 2:
        raise CommandError(f"usage: {name} {usage}   e.g. gap AAPL -8")
    symbol = argv[0].upper()
    if symbol not in server.contracts:
        raise CommandError(f"{name}: {argv[0]!r} is not a stock the simulator trades; usage: {name} {usage}")
    try:
        percent = float(argv[1])
    except ValueError:
        raise CommandError(f"{name}: {argv[1]!r} is not a percent; usage: {name} {usage}") from None
    if not -90 < percent < 500:
        raise CommandError(f"{name}: PERCENT must lie between -90 and 500 (got {argv[1]})")
    now = server.clock.now_ns()
    before = server.market.price_at(symbol, now)
    server.market.gap(symbol, percent, now)
    bid, ask, last, *_ = server.market.quote(symbol, now)
    _deliver(server, server.broker.on_price(symbol, last, now, bid, ask))
    return {"symbol": symbol, "before": before, "after": last}


# ----------------------------------------------------------------------------------------- untraded holdings


async def holding(server: SimServer, argv: list[str]) -> dict[str, Any]:
    from procs.gateway_sim.holdings import HOLDING_TYPES

    name, usage = "holding", "SYMBOL QTY [STK|OPT|CASH]   (QTY 0 removes it)"
    if len(argv) not in (2, 3):
        raise CommandError(f"usage: {name} {usage}")
    symbol = argv[0].upper()
    sec_type = argv[2].upper() if len(argv) > 2 else "STK"
    if not symbol.isalnum() or len(symbol) > 12:
        raise CommandError(f"{name}: {argv[0]!r} is not a symbol; usage: {name} {usage}")
    if sec_type not in HOLDING_TYPES:
        raise CommandError(f"{name}: {argv[2]!r} is not STK, OPT or CASH; usage: {name} {usage}")
    try:
        qty = Decimal(argv[1])
    except InvalidOperation:
        raise CommandError(f"{name}: QTY {argv[1]!r} is not a number; usage: {name} {usage}") from None
    if not qty.is_finite():
        raise CommandError(f"{name}: QTY must be a finite number; usage: {name} {usage}")
    contract, mark = _holding_contract(server, symbol, sec_type, name, usage)
    existing = server.broker.holdings.get(symbol, sec_type)
    if qty == 0 and existing is None:
        return {"symbol": symbol, "sec_type": sec_type, "qty": "0", "removed": False}
    _deliver(server, server.broker.set_holding(contract, qty, mark))
    held = existing.contract if existing else contract
    return {
        "symbol": symbol,
        "sec_type": sec_type,
        "con_id": held.con_id,
        "local_symbol": held.local_symbol or held.symbol,
        "qty": str(qty),
    }


def _holding_contract(
    server: SimServer, symbol: str, sec_type: str, name: str, usage: str
) -> tuple[SimContract, Decimal]:
    from procs.gateway_sim import holdings as h

    traded = server.contracts.get(symbol)
    if sec_type == "STK":
        if traded is not None:
            raise CommandError(
                f"{name}: {symbol} is a stock the simulator trades; move its position with "
                f"manual-order {symbol} BUY|SELL QTY"
            )
        return h.stock_contract(symbol), h.UNTRADED_STOCK_MARK
    if sec_type == "OPT":
        if traded is None:
            raise CommandError(f"{name}: no stock {symbol} to hold an option on; usage: {name} {usage}")
        price = server.market.price_at(symbol, server.clock.now_ns())
        return h.option_contract(traded, price, server.clock.now().date()), h.option_mark(price)
    if len(symbol) != 3 or not symbol.isalpha() or symbol == "USD":
        raise CommandError(f"{name}: CASH takes a currency like EUR (not USD); usage: {name} {usage}")
    return h.cash_contract(symbol), h.cash_mark(symbol)


# ----------------------------------------------------------------------------------------- slow answers, audit


async def delay(server: SimServer, argv: list[str]) -> dict[str, Any]:
    kinds = "|".join(DELAY_KINDS)
    usage = f"usage: delay {kinds} SECONDS   (0 ends it)"
    if len(argv) != 2 or argv[0].lower() not in DELAY_KINDS:
        raise CommandError(usage)
    seconds = float(one_number(argv[1], "delay", float, f"{kinds} SECONDS"))
    if seconds > MAX_DELAY_SECONDS:
        raise CommandError(f"delay: at most {MAX_DELAY_SECONDS:g} seconds; {usage}")
    kind = argv[0].lower()
    if seconds:
        server.faults.delays[kind] = seconds
    else:
        server.faults.delays.pop(kind, None)
    return {"delays": dict(server.faults.delays)}


async def audit(server: SimServer, argv: list[str]) -> dict[str, Any]:
    if argv:
        raise CommandError("usage: audit   (no arguments)")
    return server.audit.report(server.broker)


Command = Callable[["SimServer", list[str]], Awaitable[dict[str, Any]]]
IB_COMMANDS: dict[str, tuple[Command, str]] = {
    "correct-execution": (
        correct_execution,
        "EXEC_ID [PRICE|-] [QUANTITY]: IB's correction; a new execution (next execId suffix) replaces it",
    ),
    "cancel-order": (cancel_order, "ORDER_ID: cancel any working order as a human in TWS would"),
    "gap": (
        gap,
        "SYMBOL PERCENT: move the price at once (an overnight gap); stops fill beyond their trigger",
    ),
    "manual-order": (manual_order, "SYMBOL BUY|SELL QTY: a human's order from TWS (client 0, no orderRef)"),
    "holding": (holding, "SYMBOL QTY [STK|OPT|CASH]: a holding the stack does not trade (QTY 0 removes it)"),
    "delay": (delay, f"{'|'.join(DELAY_KINDS)} SECONDS: answer that kind of request late (0 ends it)"),
    "audit": (audit, "JSON: every order received, every execution, positions by contract, cash"),
}
