"""`bin/trader accept-broker SYMBOL --reason TEXT`: the operator's repair of a position mismatch.

The broker's position is read afresh through the bridge (refused unless the bridge is READY), and the difference is
booked at the price that best explains it: the broker's executions that are not ours (a human's order in TWS),
else the last quote, else the broker's average cost. Nothing is changed when any check fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec

from procs.executor.actions import Action
from procs.executor.engine import Executor
from procs.executor.orders import is_ours
from procs.executor.reconcile import split_holdings
from shared.bus import RequestError, RequestFailed, RequestTimeout
from shared.messages import AcceptBrokerRequest, ExecutionsRequest, Fill, Position, PositionsRequest, Request

AskBroker = Callable[[Request], Awaitable[Any]]


async def accept_broker(
    ex: Executor, req: AcceptBrokerRequest, ask: AskBroker | None
) -> tuple[dict[str, Any], list[Action]]:
    """Set the ledger's position in the symbol to the broker's; RequestError (one line) when it cannot be done."""
    symbol = req.symbol.strip().upper()
    reason = req.reason.strip()
    if not reason:
        raise RequestError("accept-broker needs --reason TEXT: say why the broker's number is the right one")
    if symbol not in ex.view.limits.symbols and symbol not in ex.view.positions:
        raise RequestError(
            f"{symbol!r} is not traded by the stack (SYMBOLS={','.join(sorted(ex.view.limits.symbols))}); nothing changed"
        )
    if ask is None or ex.view.settings.execution != "broker":
        raise RequestError(
            "accept-broker needs EXECUTION=broker: with local paper trading the ledger is the book"
        )
    state = ex.view.gateway.state if ex.view.gateway else "UNKNOWN"
    if state != "READY":
        raise RequestError(
            f"the bridge is {state}, not READY: the broker's position cannot be read now; nothing changed "
            "(retry when `bin/gateway-health` says OK)"
        )
    try:
        positions = msgspec.convert(await ask(PositionsRequest()), list[Position])
        executions = msgspec.convert(await ask(ExecutionsRequest()), list[Fill])
    except (RequestTimeout, RequestFailed, msgspec.ValidationError) as exc:
        raise RequestError(
            f"the bridge did not give the broker's position ({exc}); nothing changed"
        ) from None
    traded, _ = split_holdings(positions, {symbol})
    broker = traded.get(symbol, Decimal(0))
    diff = broker - ex.view.position(symbol)
    cost = next((p.avg_cost for p in positions if p.symbol == symbol and p.sec_type == "STK"), Decimal(0))
    price, method = price_of_difference(diff, [f for f in executions if f.symbol == symbol], ex, symbol, cost)
    return ex.accept_broker(
        symbol, broker, price, method=method, operator=req.operator.strip() or "operator", reason=reason
    )


def price_of_difference(
    diff: Decimal, executions: list[Fill], ex: Executor, symbol: str, broker_cost: Decimal
) -> tuple[Decimal, str]:
    """The price to book `diff` shares at, and where it came from."""
    if diff == 0:
        return Decimal(0), "no difference"
    foreign = [f for f in executions if not is_ours(f.client_order_id)]
    signed = sum((f.quantity if f.side == "BUY" else -f.quantity for f in foreign), Decimal(0))
    if foreign and signed == diff:
        value = sum((f.quantity * f.price for f in foreign), Decimal(0))
        total = sum((f.quantity for f in foreign), Decimal(0))
        return (value / total).quantize(Decimal("0.0001")), "the broker's executions that are not ours"
    quote = ex.view.quotes.get(symbol)
    if quote is not None and quote.reference > 0:
        return quote.reference, "the last quote"
    return broker_cost, "the broker's average cost"
