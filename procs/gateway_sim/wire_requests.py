"""Parsers for the client->server requests the simulator answers, at the field positions ib_async uses (178).

Pure: a list of fields in, a small frozen value out; anything malformed raises WireError with one line.
Only the leading fields a request needs are read, so newer tail fields from a client never matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from procs.gateway_sim.wire import WireError

# Every message id a TWS API client may send (ibapi/message.py OUT); anything else is garbage.
KNOWN_CLIENT_IDS = frozenset(range(1, 26)) | frozenset(range(49, 111))


@dataclass(frozen=True, slots=True)
class ContractQuery:
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str = ""


@dataclass(frozen=True, slots=True)
class MarketDataRequest:
    req_id: int
    contract: ContractQuery
    generic_ticks: str
    snapshot: bool


@dataclass(frozen=True, slots=True)
class HistoricalRequest:
    req_id: int
    contract: ContractQuery
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


@dataclass(frozen=True, slots=True)
class OrderRequest:
    order_id: int
    contract: ContractQuery
    action: str
    total_qty: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    oca_group: str = ""
    outside_rth: bool = False
    trail_stop_price: Decimal | None = None
    trailing_pct: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ExecutionQuery:
    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


def need(fields: list[str], count: int, what: str) -> None:
    if len(fields) < count:
        raise WireError(f"{what}: {len(fields)} fields, expected at least {count}")


def as_int(text: str, what: str, default: int = 0) -> int:
    if text == "":
        return default
    try:
        return int(text)
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            raise WireError(f"{what}: {text[:30]!r} is not an integer") from None


def as_decimal(text: str, what: str) -> Decimal | None:
    """IB's unset double (empty or 1.79E308) becomes None."""
    if text == "" or text.startswith("1.7976931348623157"):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise WireError(f"{what}: {text[:30]!r} is not a number") from None
    if not value.is_finite():
        raise WireError(f"{what}: {text[:30]!r} is not a finite number")
    return value


def message_id(fields: list[str]) -> int:
    head = fields[0] if fields else ""
    if not head.isdigit():
        raise WireError(f"message id {head[:20]!r} is not a number")
    msg_id = int(head)
    if msg_id not in KNOWN_CLIENT_IDS:
        raise WireError(f"unknown message id {msg_id}")
    return msg_id


def contract_at(fields: list[str], i: int, what: str) -> ContractQuery:
    need(fields, i + 12, what)
    f = fields
    return ContractQuery(
        con_id=as_int(f[i], what + " conId"),
        symbol=f[i + 1].upper(),
        sec_type=f[i + 2].upper(),
        exchange=f[i + 7].upper(),
        primary_exchange=f[i + 8].upper(),
        currency=f[i + 9].upper(),
        local_symbol=f[i + 10].strip(),
    )


def parse_start_api(fields: list[str]) -> int:
    need(fields, 3, "startApi")
    return as_int(fields[2], "startApi clientId")


def parse_contract_details(fields: list[str]) -> tuple[int, ContractQuery]:
    return as_int(fields[2] if len(fields) > 2 else "", "reqContractDetails reqId"), contract_at(
        fields, 3, "reqContractDetails"
    )


def parse_market_data(fields: list[str]) -> MarketDataRequest:
    contract = contract_at(fields, 3, "reqMktData")
    i = 15
    if contract.sec_type == "BAG":
        raise WireError("reqMktData: combo (BAG) contracts are not simulated")
    need(fields, i + 3, "reqMktData")
    if fields[i] == "1":  # delta-neutral contract present: three more fields
        i += 3
        need(fields, i + 3, "reqMktData")
    return MarketDataRequest(
        req_id=as_int(fields[2], "reqMktData reqId"),
        contract=contract,
        generic_ticks=fields[i + 1],
        snapshot=fields[i + 2] == "1",
    )


def parse_realtime_bars(fields: list[str]) -> tuple[int, ContractQuery]:
    return as_int(fields[2] if len(fields) > 2 else "", "reqRealTimeBars reqId"), contract_at(
        fields, 3, "reqRealTimeBars"
    )


def parse_historical(fields: list[str]) -> HistoricalRequest:
    need(fields, 21, "reqHistoricalData")
    contract = contract_at(fields, 2, "reqHistoricalData")
    keep = fields[21] == "1" if len(fields) > 21 and contract.sec_type != "BAG" else False
    return HistoricalRequest(
        req_id=as_int(fields[1], "reqHistoricalData reqId"),
        contract=contract,
        end=fields[15].strip(),
        bar_size=fields[16].strip(),
        duration=fields[17].strip(),
        use_rth=fields[18] == "1",
        what_to_show=fields[19].strip().upper() or "TRADES",
        format_date=as_int(fields[20], "reqHistoricalData formatDate", 1),
        keep_up_to_date=keep,
    )


def parse_head_timestamp(fields: list[str]) -> tuple[int, ContractQuery, int]:
    need(fields, 18, "reqHeadTimeStamp")
    return (
        as_int(fields[1], "reqHeadTimeStamp reqId"),
        contract_at(fields, 2, "reqHeadTimeStamp"),
        as_int(fields[17], "formatDate", 1),
    )


def _trail_fields(fields: list[str], version: int) -> tuple[Decimal | None, Decimal | None]:
    """(trailStopPrice, trailingPercent) of a stock order, by their place in ib_async's placeOrder: after the 24
    fields from modelCode (one more, faProfile, below 177; 8 more when a delta-neutral order type is set)."""
    base = 42 + (1 if 0 < version < 177 else 0)
    at = base + 24 + (8 if len(fields) > base + 22 and fields[base + 22] else 0) + 2
    if len(fields) <= at + 1:
        return None, None
    stop = as_decimal(fields[at], "placeOrder trailStopPrice") if fields[at] else None
    pct = as_decimal(fields[at + 1], "placeOrder trailingPercent") if fields[at + 1] else None
    return stop, pct


def parse_place_order(fields: list[str], version: int = 0) -> OrderRequest:
    need(fields, 29, "placeOrder")
    qty = as_decimal(fields[17], "placeOrder totalQuantity")
    trail_stop, trail_pct = _trail_fields(fields, version)
    return OrderRequest(
        order_id=as_int(fields[1], "placeOrder orderId"),
        contract=contract_at(fields, 2, "placeOrder"),
        action=fields[16].upper(),
        total_qty=qty if qty is not None else Decimal(0),
        order_type=fields[18].upper(),
        lmt_price=as_decimal(fields[19], "placeOrder lmtPrice"),
        aux_price=as_decimal(fields[20], "placeOrder auxPrice"),
        tif=fields[21].upper() or "DAY",
        account=fields[23],
        order_ref=fields[26],
        transmit=fields[27] != "0",
        oca_group=fields[22],
        outside_rth=len(fields) > 33 and fields[33] == "1",
        trail_stop_price=trail_stop,
        trailing_pct=trail_pct,
    )


def parse_cancel_order(fields: list[str]) -> int:
    need(fields, 3, "cancelOrder")
    return as_int(fields[2], "cancelOrder orderId")


def parse_executions(fields: list[str]) -> ExecutionQuery:
    need(fields, 10, "reqExecutions")
    f = fields
    return ExecutionQuery(
        req_id=as_int(f[2], "reqExecutions reqId"),
        client_id=as_int(f[3], "reqExecutions clientId"),
        account=f[4],
        time=f[5].strip(),
        symbol=f[6].upper(),
        sec_type=f[7].upper(),
        exchange=f[8].upper(),
        side=f[9].upper(),
    )


def req_id_at(fields: list[str], i: int, what: str) -> int:
    need(fields, i + 1, what)
    return as_int(fields[i], what + " reqId")
