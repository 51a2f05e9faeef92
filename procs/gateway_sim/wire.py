"""The TWS API wire format for server versions 157..178: framing, field encoding and the server->client encoders.

Pure: plain values in, bytes out (and bytes in, fields out). Never touches a socket or a clock. An encoder whose
layout changed inside that range takes the session's negotiated `version` and writes exactly that version's
fields, as IB's own decoder (ibapi/decoder.py) reads them; the tests decode every layout with ibapi and ib_async.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

SERVER_VERSION = 178
MIN_CLIENT_VERSION = 157

# The server versions inside MIN_CLIENT_VERSION..SERVER_VERSION at which a message we send changed layout, named
# as in ibapi/server_versions.py. (ib_async reads openOrder's duration from 159: an off-by-one of its own.)
MIN_SERVER_VER_DURATION = 158  # openOrder: duration
MIN_SERVER_VER_POST_TO_ATS = 160  # openOrder: postToAts
MIN_SERVER_VER_AUTO_CANCEL_PARENT = (
    162  # openOrder: autoCancelParent (completedOrder has it at every version)
)
MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT = 163  # contractDetails: sizeMinTick (at 163 only)
MIN_SERVER_VER_SIZE_RULES = 164  # contractDetails: no version/mdSizeMultiplier; minSize, sizeIncrement, ...
MIN_SERVER_VER_ADVANCED_ORDER_REJECT = 166  # error: trailing advancedOrderRejectJson
MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS = 170  # openOrder, completedOrder: minTradeQty .. midOffsetAtHalf
MIN_SERVER_VER_FA_PROFILE_DESUPPORT = 177  # openOrder, completedOrder: no more faProfile
MIN_SERVER_VER_PENDING_PRICE_REVISION = 178  # execDetails: trailing pendingPriceRevision
API_MAGIC = b"API\0"
# No legitimate client message comes near this; a bigger length prefix is garbage, not a message to wait for.
MAX_FRAME_BYTES = 1 << 20

if TYPE_CHECKING:
    from procs.gateway_sim.contracts import SimContract

_LEN = struct.Struct(">I")

Field = str | int | float | Decimal | bool | None


S = TypeVar("S")


class WireError(Exception):
    """The peer sent something that is not the TWS API; str() is one line naming the problem."""


def guarded(handler: Callable[[S, list[str]], None]) -> Callable[[S, list[str]], None]:
    """A request handler whose IndexError (a message too short) is the client's malformed input, not our bug."""

    def run(session: S, fields: list[str]) -> None:
        try:
            handler(session, fields)
        except IndexError:
            raise WireError(f"message {fields[0]} is too short ({len(fields)} fields)") from None

    return run


def fmt(value: Field) -> str:
    """One field as IB writes it: bools 1/0, None empty, Decimals plain, floats shortest round-trip."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isinf(value):
            return "Infinite"
        return repr(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
    return str(value)


def frame(fields: Iterable[Field]) -> bytes:
    """A length-prefixed message: each field NUL-terminated."""
    payload = "".join(fmt(f) + "\0" for f in fields).encode()
    return _LEN.pack(len(payload)) + payload


def frame_text(payload: str) -> bytes:
    """Fast path for hot encoders that already joined their fields with NULs (payload ends with NUL)."""
    data = payload.encode()
    return _LEN.pack(len(data)) + data


class FrameReader:
    """Cuts a byte stream into messages (lists of fields); tolerates any split of the stream."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete message (a truncated frame if the peer stops)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[list[str]]:
        self._buf += data
        out: list[list[str]] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > self._max:
                raise WireError(f"length prefix {size} bytes exceeds the {self._max}-byte limit")
            if size == 0:
                raise WireError("empty message (length prefix 0)")
            end = pos + 4 + size
            if len(buf) < end:
                break
            out.append(split_fields(bytes(buf[pos + 4 : end])))
            pos = end
        del buf[:pos]
        return out


def split_fields(payload: bytes) -> list[str]:
    try:
        text = payload.decode()
    except UnicodeDecodeError as exc:
        raise WireError(f"message is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.endswith("\0"):
        raise WireError("message does not end with a NUL field terminator")
    return text[:-1].split("\0")


def parse_version_range(payload: bytes) -> tuple[int, int, str]:
    """The client's 'v157..178[ options]' after the API magic -> (min, max, options)."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        raise WireError("version range is not text") from None
    head, _, options = text.partition(" ")
    if not head.startswith("v") or ".." not in head:
        raise WireError(f"expected a version range like 'v157..178', got {text[:40]!r}")
    lo, _, hi = head[1:].partition("..")
    if not (lo.isdigit() and hi.isdigit()):
        raise WireError(f"expected a version range like 'v157..178', got {text[:40]!r}")
    return int(lo), int(hi), options.strip()


def check_version(version: int) -> int:
    """A negotiated version an encoder can write; anything else is a simulator bug (e.g. a session's unset 0)."""
    if not MIN_CLIENT_VERSION <= version <= SERVER_VERSION:
        raise ValueError(f"server version {version} is outside {MIN_CLIENT_VERSION}..{SERVER_VERSION}")
    return version


def negotiate_version(client_min: int, client_max: int) -> int | None:
    """What a real server answers: min(ours, theirs); None when the client is too old for us."""
    if client_max < MIN_CLIENT_VERSION or client_min > SERVER_VERSION:
        return None
    return min(SERVER_VERSION, client_max)


# ----------------------------------------------------------------------------------------- handshake/session


def handshake_reply(version: int, conn_time: str) -> bytes:
    """Exactly two fields: ib_async ends the handshake on the first 2-field message."""
    return frame((version, conn_time))


def next_valid_id(order_id: int) -> bytes:
    return frame((9, 1, order_id))


def managed_accounts(accounts: Sequence[str]) -> bytes:
    return frame((15, 1, ",".join(accounts)))


def current_time(epoch_seconds: int) -> bytes:
    return frame((49, 1, epoch_seconds))


def error(
    req_id: int, code: int, message: str, advanced_reject_json: str = "", *, version: int = SERVER_VERSION
) -> bytes:
    # From 166 the trailing advancedOrderRejectJson is required (ib_async drops the error silently without it);
    # below 166 a client reads none.
    fields: list[Field] = [4, 2, req_id, code, message]
    if check_version(version) >= MIN_SERVER_VER_ADVANCED_ORDER_REJECT:
        fields.append(advanced_reject_json)
    return frame(fields)


# ----------------------------------------------------------------------------------------------- contracts


def trading_class(c: SimContract) -> str:
    return "NMS" if c.primary_exchange == "NASDAQ" and c.sec_type == "STK" else c.symbol


def contract_fields_11(c: SimContract, exchange: str | None = None) -> list[Field]:
    """conId .. tradingClass without primaryExchange, as in position/openOrder/execDetails; an option's expiry,
    strike, right and multiplier and a currency pair's localSymbol come from the contract (a stock leaves them empty)."""
    exch = c.exchange if exchange is None else exchange
    return [
        c.con_id,
        c.symbol,
        c.sec_type,
        c.last_trade_date,
        c.strike,
        c.right,
        c.multiplier,
        exch,
        c.currency,
        c.local_symbol or c.symbol,
        c.trading_class or trading_class(c),
    ]


def contract_details(req_id: int, c: SimContract, *, version: int = SERVER_VERSION) -> bytes:
    size_rules = check_version(version) >= MIN_SERVER_VER_SIZE_RULES
    # Below 164 the message still has its version field (8: evRule/evMultiplier and secIds present).
    fields: list[Field] = [10] if size_rules else [10, 8]
    fields += [req_id, c.symbol, c.sec_type, "", 0.0, "", c.exchange, c.currency, c.symbol]
    fields += [trading_class(c), trading_class(c), c.con_id, c.min_tick]
    if not size_rules:
        fields.append(1)  # mdSizeMultiplier, dropped at 164
    fields += ["", "ACTIVETIM,ADJUST,ALERT,DAY,GTC,LMT,MKT,STP,STPLMT", f"SMART,{c.primary_exchange}", 1, 0]
    fields += [c.long_name or c.symbol, c.primary_exchange, "", c.industry, "", "", c.time_zone_id]
    fields += [c.trading_hours, c.liquid_hours, "", ""]  # evRule, evMultiplier
    fields += [1, "ISIN", c.isin] if c.isin else [0]  # the security-id list (NautilusTrader needs the ISIN)
    fields += [1, "", "", "26", "", "ETF" if c.industry == "ETF" else "COMMON"]
    if size_rules:
        fields += [
            Decimal("1"),
            Decimal("1"),
            Decimal("100"),
        ]  # minSize, sizeIncrement, suggestedSizeIncrement
    elif version >= MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT:
        fields.append(Decimal("1"))  # sizeMinTick, at 163 only
    return frame(fields)


def contract_details_end(req_id: int) -> bytes:
    return frame((52, 1, req_id))


# ---------------------------------------------------------------------------------------------- market data


def market_data_type(req_id: int, data_type: int) -> bytes:
    return frame((58, 1, req_id, data_type))


def tick_price(req_id: int, tick_type: int, price: float, size: int | Decimal, attrib: int = 0) -> bytes:
    # Exactly 7 fields: ib_async unpacks the tuple.
    return frame_text(f"1\x006\x00{req_id}\x00{tick_type}\x00{price!r}\x00{size}\x00{attrib}\x00")


def tick_size(req_id: int, tick_type: int, size: int | Decimal) -> bytes:
    return frame_text(f"2\x006\x00{req_id}\x00{tick_type}\x00{size}\x00")


def tick_snapshot_end(req_id: int) -> bytes:
    return frame((57, 1, req_id))


def realtime_bar(
    req_id: int, epoch: int, o: float, h: float, lo: float, c: float, volume: int, wap: float, count: int
) -> bytes:
    return frame((50, 3, req_id, epoch, o, h, lo, c, volume, wap, count))


BarRow = tuple[
    str, float, float, float, float, int, float, int
]  # date, open, high, low, close, volume, wap, n


def historical_data(req_id: int, start: str, end: str, bars: Sequence[BarRow]) -> bytes:
    fields: list[Field] = [17, req_id, start, end, len(bars)]
    for row in bars:
        fields.extend(row)
    return frame(fields)


def historical_data_update(req_id: int, row: BarRow) -> bytes:
    date, o, h, lo, c, volume, wap, count = row
    return frame((90, req_id, count, date, o, c, h, lo, wap, volume))  # IB's order: open, close, high, low


def head_timestamp(req_id: int, stamp: str) -> bytes:
    return frame((88, req_id, stamp))


# -------------------------------------------------------------------------------------------------- account


def account_value(key: str, value: str, currency: str, account: str) -> bytes:
    return frame((6, 2, key, value, currency, account))


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
    # Exactly 20 fields, and the contract block carries primaryExchange where others carry exchange.
    fields = contract_fields_11(c, exchange=c.primary_exchange)
    return frame(
        [7, 8, *fields, position, market_price, market_value, avg_cost, unrealized, realized, account]
    )


def account_time(hhmm: str) -> bytes:
    return frame((8, 1, hhmm))


def account_download_end(account: str) -> bytes:
    return frame((54, 1, account))


def position(account: str, c: SimContract, qty: Decimal, avg_cost: Decimal) -> bytes:
    return frame([61, 3, account, *contract_fields_11(c, exchange=c.primary_exchange), qty, avg_cost])


def position_end() -> bytes:
    return frame((62, 1))


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> bytes:
    return frame((63, 1, req_id, account, tag, value, currency))


def account_summary_end(req_id: int) -> bytes:
    return frame((64, 1, req_id))


def account_update_multi(req_id: int, account: str, key: str, value: str, currency: str) -> bytes:
    return frame((73, 1, req_id, account, "", key, value, currency))


def account_update_multi_end(req_id: int) -> bytes:
    return frame((74, 1, req_id))


# ------------------------------------------------------------------------------------------ orders (simple)


def open_order_end() -> bytes:
    return frame((53, 1))


def completed_orders_end() -> bytes:
    return frame((102,))  # no version field


def exec_details_end(req_id: int) -> bytes:
    return frame((55, 1, req_id))


def commission_report(exec_id: str, commission: Decimal, currency: str, realized_pnl: float | None) -> bytes:
    # Exactly 8 fields; yield and its redemption date stay unset.
    return frame((59, 1, exec_id, commission, currency, realized_pnl, "", ""))


def encode_all(messages: Iterable[bytes]) -> bytes:
    return b"".join(messages)
