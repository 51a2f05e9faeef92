"""position and portfolioValue messages for any contract: an option's expiry, strike, right, multiplier and
localSymbol, a currency pair's localSymbol, which wire.position/portfolio_value (stocks only) leave empty.

Pure encoders; their layouts (position version 3, exactly 16 fields; portfolioValue version 8, exactly 20) are the
same at every server version the simulator accepts (157..178). No sockets.
"""

from __future__ import annotations

from decimal import Decimal

from procs.gateway_sim.contracts import SimContract
from procs.gateway_sim.wire import Field, frame, trading_class


def contract_fields(c: SimContract, exchange: str) -> list[Field]:
    """conId .. tradingClass (11 fields), every derivative field filled from the contract."""
    return [
        c.con_id,
        c.symbol,
        c.sec_type,
        c.last_trade_date,
        c.strike,
        c.right,
        c.multiplier,
        exchange,
        c.currency,
        c.local_symbol or c.symbol,
        c.trading_class or trading_class(c),
    ]


def position(account: str, c: SimContract, qty: Decimal, avg_cost: Decimal) -> bytes:
    return frame([61, 3, account, *contract_fields(c, c.primary_exchange), qty, avg_cost])


def portfolio_value(
    c: SimContract,
    position: Decimal,
    market_price: float,
    market_value: float,
    avg_cost: Decimal,
    unrealized: float,
    realized: float,
    account: str,
) -> bytes:
    fields = contract_fields(c, c.primary_exchange)
    return frame(
        [7, 8, *fields, position, market_price, market_value, avg_cost, unrealized, realized, account]
    )
