"""Translations between ib_async's objects and the stack's messages (bars, quotes, orders, fills, contracts).

Part of the ib_async adapter (procs/bridge/ib): plain functions over plain attributes, no IB session, no socket,
no clock. Money crosses as Decimal via str()
of IB's floats (never Decimal(float), which would invent digits); account ids leave here masked.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ib_async import Contract, ExecutionFilter, Order, Stock

from procs.bridge.orders import confirmed, order_status
from shared.config import mask_account, mask_secrets
from shared.messages import AccountValue, Bar, ContractInfo, Fill, OrderEvent, PlaceOrder, Position, Quote

# IB's barSizeSetting for each bar length it serves, in seconds.
BAR_SIZES: dict[int, str] = {
    1: "1 secs",
    5: "5 secs",
    10: "10 secs",
    15: "15 secs",
    30: "30 secs",
    60: "1 min",
    120: "2 mins",
    180: "3 mins",
    300: "5 mins",
    600: "10 mins",
    900: "15 mins",
    1200: "20 mins",
    1800: "30 mins",
    3600: "1 hour",
    7200: "2 hours",
    10800: "3 hours",
    14400: "4 hours",
    28800: "8 hours",
    86400: "1 day",
}


def stock(symbol: str) -> Contract:
    return Stock(symbol, "SMART", "USD")


def dec(value: float | int | None) -> Decimal:
    """IB's float as the Decimal it was meant to be (IB's unset double counts as 0)."""
    if value is None or not math.isfinite(value) or abs(value) > 1e300:
        return Decimal(0)
    return Decimal(str(value))


def to_ns(when: datetime | date | None) -> int:
    if when is None:
        return 0
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day, tzinfo=UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1_000_000) * 1000


def duration_string(seconds: int) -> str:
    """IB's durationStr: seconds up to a day, then days, then years."""
    if seconds <= 86_400:
        return f"{seconds} S"
    days = -(-seconds // 86_400)
    return f"{days} D" if days <= 365 else f"{-(-days // 365)} Y"


def end_string(end_ns: int) -> str:
    """IB's endDateTime: '' = now, else UTC 'YYYYMMDD-HH:MM:SS'."""
    if not end_ns:
        return ""
    return datetime.fromtimestamp(end_ns / 1e9, tz=UTC).strftime("%Y%m%d-%H:%M:%S")


def realtime_bar(symbol: str, bar: Any, bar_seconds: int = 5) -> Bar:
    return Bar(
        symbol=symbol,
        start_ns=to_ns(bar.time),
        bar_seconds=bar_seconds,
        open=float(bar.open_),
        high=float(bar.high),
        low=float(bar.low),
        close=float(bar.close),
        volume=float(bar.volume),
        wap=float(bar.wap),
        count=int(bar.count),
    )


def history_bar(symbol: str, bar: Any, bar_seconds: int) -> Bar:
    return Bar(
        symbol=symbol,
        start_ns=to_ns(bar.date),
        bar_seconds=bar_seconds,
        open=float(bar.open),
        high=float(bar.high),
        low=float(bar.low),
        close=float(bar.close),
        volume=float(bar.volume),
        wap=float(bar.average),
        count=int(bar.barCount),
    )


def _finite(x: Any) -> float:
    return float(x) if x is not None and math.isfinite(x) else math.nan


def quote(ticker: Any) -> Quote | None:
    """The ticker's top of book, or None while it has no price at all."""
    bid, ask, last = _finite(ticker.bid), _finite(ticker.ask), _finite(ticker.last)
    if math.isnan(bid) and math.isnan(ask) and math.isnan(last):
        return None
    return Quote(
        symbol=ticker.contract.symbol,
        bid=bid,
        ask=ask,
        last=last,
        bid_size=_finite(ticker.bidSize),
        ask_size=_finite(ticker.askSize),
        last_size=_finite(ticker.lastSize),
        quote_ns=to_ns(ticker.time),
    )


def order_event(trade: Any, gateway_status: str | None, *, as_listed: bool = False) -> OrderEvent:
    """The order's state; `gateway_status` is the Gateway's own last status word for it (gateway_word), which
    decides whether a final status is confirmed. `as_listed`: the Gateway just listed the order, and its word is
    the state (whatever ib_async holds)."""
    order, st = trade.order, trade.orderStatus
    ib_status = gateway_status if as_listed and gateway_status else st.status
    last = trade.log[-1] if trade.log else None
    code = int(last.errorCode) if last is not None else 0
    if as_listed and ib_status != st.status:
        code = 0  # the error ib_async read as a cancel is not the listed order's state
    total = dec(order.totalQuantity)
    lmt = dec(order.lmtPrice) if order.orderType == "LMT" else None
    perm_id = int(order.permId or st.permId)
    status = order_status(ib_status, st.filled, st.remaining, code, perm_id)
    return OrderEvent(
        client_order_id=order.orderRef or "",
        order_id=int(order.orderId),
        perm_id=perm_id,
        symbol=trade.contract.symbol,
        side="SELL" if order.action == "SELL" else "BUY",
        quantity=total,
        order_type=order.orderType,
        limit_price=lmt,
        status=status,
        ib_status=ib_status,
        filled=dec(st.filled),
        remaining=dec(st.remaining) if st.status else total,
        avg_fill_price=dec(st.avgFillPrice),
        reason=(last.message if last is not None and code else ""),
        error_code=code,
        confirmed=confirmed(status, ib_status, gateway_status),
        stop_price=stop_trigger(order),
    )


def stop_trigger(order: Any) -> Decimal | None:
    """A stop's trigger as IB holds it: a TRAIL's trailStopPrice (where it has trailed to), an STP's auxPrice;
    None for other orders or while IB has not said (its unset double)."""
    if order.orderType == "TRAIL":
        value = dec(getattr(order, "trailStopPrice", None)) or dec(getattr(order, "auxPrice", None))
    elif order.orderType in ("STP", "STP LMT"):
        value = dec(getattr(order, "auxPrice", None))
    else:
        return None
    return value if value > 0 else None


def commission(report: Any) -> Decimal | None:
    """A fill's commission, or None while unknown: no report yet, or IB's UNSET double (1.7976931348623157E308)
    for a commission it does not know (never 0: that would book a free trade)."""
    if report is None or not report.execId:
        return None
    value = report.commission
    if value is None or not math.isfinite(value) or abs(value) > 1e300:
        return None
    return Decimal(str(value))


def fill(f: Any) -> Fill:
    ex = f.execution
    return Fill(
        exec_id=ex.execId,
        client_order_id=ex.orderRef or "",
        order_id=int(ex.orderId),
        perm_id=int(ex.permId),
        symbol=f.contract.symbol,
        side="SELL" if ex.side in ("SLD", "SELL") else "BUY",
        quantity=dec(ex.shares),
        price=dec(ex.price),
        commission=commission(f.commissionReport),
        exec_ns=to_ns(ex.time or f.time),
        account=mask_account(ex.acctNumber),
    )


def position(p: Any) -> Position:
    """One holding of one contract: an AAPL option is sec_type OPT with its own con_id, never AAPL stock."""
    c = p.contract
    return Position(
        account=mask_account(p.account),
        symbol=c.symbol,
        quantity=dec(p.position),
        avg_cost=dec(p.avgCost),
        sec_type=c.secType,
        con_id=int(c.conId or 0),
        currency=c.currency or "",
        local_symbol=c.localSymbol or "",
    )


def account_value(v: Any) -> AccountValue:
    # some values (AccountCode, ...) are the account id itself
    return AccountValue(
        account=mask_account(v.account), tag=v.tag, value=mask_secrets(str(v.value)), currency=v.currency
    )


def contract_info(details: Any) -> ContractInfo:
    c = details.contract
    return ContractInfo(
        symbol=c.symbol,
        con_id=int(c.conId),
        exchange=c.exchange,
        primary_exchange=c.primaryExchange,
        currency=c.currency,
        min_tick=dec(details.minTick),
        long_name=details.longName,
        time_zone_id=details.timeZoneId,
        trading_hours=details.tradingHours,
        liquid_hours=details.liquidHours,
    )


def ib_order(req: PlaceOrder, account: str) -> Order:
    """The IB order for a PlaceOrder; the client order id travels as orderRef."""
    order = Order(
        action=req.side,
        totalQuantity=float(req.quantity),
        orderType=req.order_type,
        tif=req.tif,
        orderRef=req.client_order_id,
        account=account,
        transmit=True,
    )
    if req.limit_price is not None:
        order.lmtPrice = float(req.limit_price)
    if req.stop_price is not None:
        if req.order_type == "TRAIL":
            order.trailStopPrice = float(req.stop_price)
        else:
            order.auxPrice = float(req.stop_price)
    if req.trailing_percent is not None:
        order.trailingPercent = float(req.trailing_percent)
    if req.outside_rth:
        order.outsideRth = True
    if req.oca_group:
        order.ocaGroup = req.oca_group
        order.ocaType = 3  # reduce the others by each fill, without blocking: never more than the position
    return order


def executions_filter() -> ExecutionFilter:
    """All of today's executions; `since` is applied on our side (IB's time filter format varies)."""
    return ExecutionFilter()
