"""What the Gateway refuses in a new order before it works: a bad action, size, type, account or price (201, 387,
110), and in a modification of a working order (105, 321), with IB's texts.

Pure: an order and the account's facts in, a rejection or None out. It must never change the order.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from procs.gateway_sim.orders import OrderRejected, SimOrder

ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT", "TRAIL"})


def invalid_order(order: SimOrder, account: str, tick: Decimal) -> OrderRejected | None:
    """The rejection a Gateway answers this order with, or None when it may work."""

    def reject(code: int, why: str) -> OrderRejected:
        return OrderRejected(order.order_id, code, why)

    if order.action not in ("BUY", "SELL"):
        return reject(201, f"Order rejected - reason:Unknown action {order.action!r}, use BUY or SELL")
    if order.total_qty <= 0:
        return reject(201, "Order rejected - reason:The order size must be positive")
    if order.order_type not in ORDER_TYPES:
        return reject(387, "Unsupported order type for this exchange and security type.")
    if order.account and order.account != account:
        return reject(201, f"Order rejected - reason:Account {order.account} is not managed by this session")
    if order.order_type == "TRAIL" and not (order.trailing_pct is not None and 0 < order.trailing_pct < 100):
        return reject(201, "Order rejected - reason:A TRAIL order needs a trailing percent between 0 and 100")
    needs_limit = order.order_type in ("LMT", "STP LMT")
    needs_stop = order.order_type in ("STP", "STP LMT")
    for needed, price, name in (
        (needs_limit, order.lmt_price, "limit"),
        (needs_stop, order.aux_price, "stop"),
    ):
        if needed and (price is None or price <= 0):
            return reject(201, f"Order rejected - reason:The {name} price is missing or not positive")
        if needed and price is not None and price % tick:
            return reject(110, "The price does not conform to the minimum price variation for this contract.")
    return None


def refused_modification(order: SimOrder, new: SimOrder, account: str, tick: Decimal) -> OrderRejected | None:
    """The rejection a Gateway answers a modification of the working `order` with, or None when it may apply.

    105 and 321 are warnings to ib_async: the client keeps the order live, as it still is."""
    if (new.symbol, new.action) != (order.symbol, order.action):
        return OrderRejected(order.order_id, 105, "Order being modified does not match original order.")
    problem = invalid_order(dataclasses.replace(new, account=new.account or order.account), account, tick)
    if problem is not None:
        return OrderRejected(
            order.order_id, 321, f"Error validating request:-'bN' : cause - {problem.message}"
        )
    if new.total_qty < order.filled:
        cause = f"the order size {new.total_qty} is below the quantity already filled ({order.filled})"
        return OrderRejected(order.order_id, 321, f"Error validating request:-'bN' : cause - {cause}")
    return None
