"""Orders without duplicates: each client order id (sent as the IB orderRef) maps to one Gateway order, across
retries, reconnects and bridge restarts (the registry is refilled from the Gateway's orders after every sync).

Pure: requests and Gateway facts in, decisions out. It must never let a second order through for an id it has
seen, and never forget an order the Gateway may hold (only unacknowledged ones, after a complete sync).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from shared.messages import OrderEvent, OrderStatusName, PlaceOrder

MAX_CLIENT_ORDER_ID = 64
_ID_RE = re.compile(r"[A-Za-z0-9._:\-]+")
_SYMBOL_RE = re.compile(r"[A-Z][A-Z0-9.]{0,9}")

Fingerprint = tuple[str, str, Decimal, str, Decimal | None, Decimal | None, str]


class OrderInvalid(Exception):
    """A PlaceOrder field is wrong; str() names the field and what to do."""


class OrderConflict(Exception):
    """The client order id was already used for a different order."""


def fingerprint(req: PlaceOrder) -> Fingerprint:
    """What makes two PlaceOrders the same order (a retry) rather than two orders."""
    return (
        req.symbol,
        req.side,
        req.quantity.normalize(),
        req.order_type,
        None if req.limit_price is None else req.limit_price.normalize(),
        None if req.stop_price is None else req.stop_price.normalize(),
        req.tif if req.trailing_percent is None else f"{req.tif} trail {req.trailing_percent.normalize()}%",
    )


def _on_tick(price: Decimal, tick: Decimal) -> bool:
    try:
        return tick <= 0 or (price / tick) == (price / tick).to_integral_value()
    except InvalidOperation:
        return False


def check_place_order(req: PlaceOrder, min_tick: Decimal | None = None) -> None:
    """Raise OrderInvalid naming the first wrong field of `req`."""
    cid = req.client_order_id
    if not cid or len(cid) > MAX_CLIENT_ORDER_ID or not _ID_RE.fullmatch(cid):
        raise OrderInvalid(
            f"client_order_id {cid!r} is invalid: use 1-{MAX_CLIENT_ORDER_ID} letters, digits or ._:-"
        )
    if not _SYMBOL_RE.fullmatch(req.symbol):
        raise OrderInvalid(f"symbol {req.symbol!r} is not a ticker (e.g. AAPL)")
    if not req.quantity.is_finite() or req.quantity <= 0:
        raise OrderInvalid(f"quantity must be a positive number of shares (got {req.quantity})")
    _check_prices(req, min_tick)
    _check_trail(req)


def _check_trail(req: PlaceOrder) -> None:
    pct = req.trailing_percent
    if req.order_type != "TRAIL":
        if pct is not None:
            raise OrderInvalid(f"trailing_percent must be empty for a {req.order_type} order")
        return
    if pct is None or not pct.is_finite() or not 0 < pct <= 50:
        raise OrderInvalid(f"trailing_percent must be above 0 and at most 50 for a TRAIL order (got {pct})")


def _check_prices(req: PlaceOrder, min_tick: Decimal | None) -> None:
    needs = {"LMT": "limit_price", "STP": "stop_price"}.get(req.order_type)
    optional = "stop_price" if req.order_type == "TRAIL" else ""  # a TRAIL's initial trigger
    for name in ("limit_price", "stop_price"):
        price: Decimal | None = getattr(req, name)
        if price is None:
            if name == needs:
                raise OrderInvalid(f"{name} is required for a {req.order_type} order")
            continue
        if name != needs and name != optional:
            raise OrderInvalid(f"{name} must be empty for a {req.order_type} order")
        if not price.is_finite() or price <= 0:
            raise OrderInvalid(f"{name} must be a positive price (got {price})")
        if min_tick is not None and not _on_tick(price, min_tick):
            raise OrderInvalid(f"{name} {price} is not a multiple of {req.symbol}'s minimum tick {min_tick}")


def order_status(
    ib_status: str, filled: float, remaining: float, error_code: int = 0, perm_id: int = 0
) -> OrderStatusName:
    """IB's status word as our order state (an error-cancelled order that never worked is REJECTED)."""
    if ib_status == "ValidationError" and error_code == 321 and perm_id == 0 and filled == 0:
        # 321 (e.g. a read-only API) reaches ib_async as a validation *warning*; on an order the Gateway never
        # acknowledged (no permId) it means refused, not live
        return "REJECTED"
    if ib_status in ("PendingSubmit", "ApiPending", ""):
        return "NEW"
    if ib_status in ("PreSubmitted", "Submitted", "ValidationError", "ApiUpdate"):
        return "PARTIALLY_FILLED" if filled > 0 and remaining > 0 else "SUBMITTED"
    if ib_status == "Filled":
        return "FILLED"
    if ib_status == "PendingCancel":
        return "PENDING_CANCEL"
    if ib_status in ("Cancelled", "ApiCancelled"):
        return "REJECTED" if error_code not in (0, 202) and filled == 0 else "CANCELLED"
    if ib_status == "Inactive":
        return "INACTIVE"
    return "SUBMITTED"


DONE: frozenset[OrderStatusName] = frozenset({"FILLED", "CANCELLED", "REJECTED", "INACTIVE"})
# ib_async's final status words (OrderStatus.DoneStates): after one of them it stops changing the order by itself
IB_FINAL = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


def confirmed(status: OrderStatusName, ib_status: str, gateway_status: str | None) -> bool:
    """Whether an order state is the broker's word: a final status counts only when the Gateway's own last order
    message (orderStatus, openOrder, completedOrder; or its 202 "Order Canceled") said that very word. ib_async
    writes Cancelled itself on any order-scoped error outside its warning set (10349, 161, 10311 on live orders)
    and on a cancel of an Inactive order; a working state is never final, so it is never in doubt."""
    if status not in DONE:
        return True
    return bool(gateway_status) and gateway_status == ib_status


def invented(ib_status: str, gateway_status: str | None) -> bool:
    """The order's current final status is ib_async's own, not the Gateway's last word."""
    return ib_status in IB_FINAL and ib_status != gateway_status


@dataclass
class OrderRecord:
    client_order_id: str
    symbol: str
    fingerprint: Fingerprint | None  # None when learnt from the Gateway (its floats do not round-trip)
    order_id: int = 0
    perm_id: int = 0
    status: OrderStatusName = "NEW"
    acknowledged: bool = False  # the Gateway has spoken of it (openOrder, orderStatus, or a sync)
    sent_generation: int = 0  # the session it was sent in
    placing: bool = False  # claimed, not yet handed to ib_async (waiting for contract details or pacing room)
    cancel_asked: bool = False  # a cancel came while placing: the placement must not be sent
    replacements: int = 0  # times re-placed under a fresh order id after a 103 (at most once)


@dataclass(frozen=True)
class Claim:
    record: OrderRecord
    new: bool  # False: a retry of an order already placed; answer with its ack, send nothing


class OrderRegistry:
    """client order id -> the one order it stands for."""

    def __init__(self) -> None:
        self._by_cid: dict[str, OrderRecord] = {}
        self.highest_order_id = 0
        self.duplicates = 0
        # order ids the Gateway refused as duplicates (103) whose order went out again under a fresh id: their
        # ib_async trades are dead copies, never the order's state
        self.replaced: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._by_cid)

    def get(self, client_order_id: str) -> OrderRecord | None:
        return self._by_cid.get(client_order_id)

    def claim(self, req: PlaceOrder) -> Claim:
        """Reserve `req.client_order_id` before anything is sent (synchronous: no await may split this)."""
        fp = fingerprint(req)
        known = self._by_cid.get(req.client_order_id)
        if known is not None:
            if known.fingerprint is not None and known.fingerprint != fp:
                raise OrderConflict(
                    f"client_order_id {req.client_order_id!r} was already used for a different order "
                    f"({_describe(known.fingerprint)}); use a new id"
                )
            self.duplicates += 1
            return Claim(known, new=False)
        record = OrderRecord(req.client_order_id, req.symbol, fp, placing=True)
        self._by_cid[req.client_order_id] = record
        return Claim(record, new=True)

    def resized(self, client_order_id: str, quantity: Decimal) -> None:
        """A modify changed the order's size: a retry of the PlaceOrder with the new size is the same order."""
        record = self._by_cid.get(client_order_id)
        if record is not None and record.fingerprint is not None:
            fp = record.fingerprint
            record.fingerprint = (fp[0], fp[1], quantity.normalize(), *fp[3:])

    def release(self, client_order_id: str) -> None:
        """Undo a claim whose order was never sent (the send itself failed)."""
        record = self._by_cid.get(client_order_id)
        if record is not None and not record.acknowledged:
            if record.cancel_asked:  # cancelled before it was sent: a retry must not place it after all
                self.withheld(client_order_id)
            else:
                del self._by_cid[client_order_id]

    def ask_cancel(self, client_order_id: str) -> bool:
        """A cancel for an order still being placed: remember it (the placement is then withheld); False when
        the order is not (or no longer) waiting to be placed."""
        record = self._by_cid.get(client_order_id)
        if record is None or not record.placing:
            return False
        record.cancel_asked = True
        return True

    def withheld(self, client_order_id: str) -> OrderRecord:
        """The placement was dropped before it was sent, on a cancel: the id stays taken (a retry of the same
        PlaceOrder answers CANCELLED), and nothing ever reached the Gateway."""
        record = self._by_cid[client_order_id]
        record.placing = False
        record.status = "CANCELLED"
        return record

    def sent(self, client_order_id: str, order_id: int, generation: int) -> None:
        record = self._by_cid[client_order_id]
        record.order_id, record.sent_generation = order_id, generation
        record.placing = False
        self.highest_order_id = max(self.highest_order_id, order_id)

    def replace_after_duplicate(self, order_id: int) -> OrderRecord | None:
        """The Gateway refused `order_id` as a duplicate (103): the order it carries may go out once more under a
        fresh id. The record to re-place, or None (not ours, not its current id, or already re-placed once)."""
        record = next((r for r in self._by_cid.values() if r.order_id == order_id), None)
        if record is None or record.replacements or order_id in self.replaced:
            return None
        return record

    def replaced_by(
        self, old_order_id: int, client_order_id: str, new_order_id: int, generation: int
    ) -> None:
        """The order of `old_order_id` (refused with 103) went out again as `new_order_id`."""
        self.replaced[old_order_id] = new_order_id
        record = self._by_cid[client_order_id]
        record.replacements += 1
        self.sent(client_order_id, new_order_id, generation)

    def note_order_id(self, order_id: int) -> None:
        """An order id the Gateway showed (an execution, another client's order): never issue it again."""
        self.highest_order_id = max(self.highest_order_id, order_id)

    def seen(
        self, client_order_id: str, symbol: str, order_id: int, perm_id: int, status: OrderStatusName
    ) -> OrderRecord | None:
        """The Gateway reported this order (live event or sync); empty ids are not ours and are skipped."""
        self.highest_order_id = max(self.highest_order_id, order_id)
        if not client_order_id or order_id in self.replaced:
            return None
        record = self._by_cid.get(client_order_id)
        if record is None:
            record = self._by_cid[client_order_id] = OrderRecord(client_order_id, symbol, None)
        record.order_id = order_id or record.order_id
        record.perm_id = perm_id or record.perm_id
        record.status = status
        record.acknowledged = True
        return record

    def forget_unacknowledged(self, at_gateway: set[str], generation: int) -> list[OrderRecord]:
        """After a complete sync of session `generation`: orders sent in an earlier session that the Gateway
        never saw were lost with that socket (a retry with the same id may now place them)."""
        lost = [
            r
            for r in self._by_cid.values()
            if not r.acknowledged
            and r.order_id  # never sent (still being placed, or withheld on a cancel): nothing was lost
            and r.sent_generation < generation
            and r.client_order_id not in at_gateway
        ]
        for r in lost:
            del self._by_cid[r.client_order_id]
        return lost

    def records(self) -> list[OrderRecord]:
        return list(self._by_cid.values())


def _describe(fp: Fingerprint) -> str:
    symbol, side, qty, otype, lmt, stp, tif = fp
    price = f" {lmt}" if lmt is not None else f" stop {stp}" if stp is not None else ""
    return f"{side} {qty} {symbol} {otype}{price} {tif}"


def withheld_order(req: PlaceOrder) -> OrderEvent:
    """A placement dropped before it was sent, on a cancel: the bridge's own certain word (nothing was placed)."""
    return OrderEvent(
        client_order_id=req.client_order_id,
        symbol=req.symbol,
        side=req.side,
        quantity=req.quantity,
        order_type=req.order_type,
        limit_price=req.limit_price,
        status="CANCELLED",
        reason="cancelled before it was sent to the Gateway; nothing was placed",
    )
