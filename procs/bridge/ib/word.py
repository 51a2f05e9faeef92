"""The Gateway's own last word on each order, kept apart from the status ib_async writes on its own.

ib_async 2.1.0 sets a live order's status to Cancelled itself on any order-scoped error outside its small warning
set (wrapper.error: 10349 "TIF set to DAY by preset", 161, 10311...) and on a cancel of an Inactive order
(ib.cancelOrder), although the Gateway cancelled nothing. Its trade log cannot tell the two apart for long (a
fill appends an entry with no error code, and a Gateway orderStatus identical in every field to the invented one
appends nothing), so the status words the Gateway itself sent -- orderStatus, openOrder's orderState,
completedOrder, and the 202 "Order Canceled" notice -- are recorded here, per order, as they arrive, by wrapping
those wrapper methods (ib_async's decoder looks them up on the wrapper at each message). When the Gateway speaks
of an order whose final status ib_async invented, that status is put back to the Gateway's word (openOrder never
touches the status of a known order in ib_async) and the order is announced again.

Part of the ib_async adapter (procs/bridge/ib), over ib_async's Wrapper. It must never raise into ib_async's
decoding, never change a status the Gateway gave, and never drop a message: each wrapped method always runs
ib_async's own handler.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ib_async import IB, Trade, TradeLogEntry

from procs.bridge.orders import invented
from shared.log import event, log_every

CANCELLED_NOTICE = 202  # "Order Canceled - reason:": the Gateway's own word that it cancelled the order

Key = tuple[str, int, int]


def _keys(client_id: int, order_id: int, perm_id: int) -> list[Key]:
    keys: list[Key] = []
    if order_id > 0:
        keys.append(("id", client_id, order_id))
    if perm_id > 0:
        keys.append(("perm", 0, perm_id))
    return keys


class GatewayWord:
    """Installs itself on `ib.wrapper`; `status_of(trade)` is the Gateway's last status word for that order."""

    def __init__(self, ib: IB) -> None:
        self.ib = ib
        self._said: dict[Key, tuple[int, str]] = {}  # key -> (arrival number, status word)
        self._arrivals = itertools.count(1)
        self.corrected = 0  # invented final statuses put back to (or given the reason of) the Gateway's word
        self.changed: Callable[[Trade], None] = lambda trade: None  # the order must be announced again
        self.duplicate_id: Callable[[int], None] = lambda order_id: None  # the Gateway refused an id (103)
        w = ib.wrapper
        self._order_status, self._open_order = w.orderStatus, w.openOrder
        self._completed_order, self._error = w.completedOrder, w.error
        w.orderStatus = self._on_order_status  # type: ignore[method-assign]
        w.openOrder = self._on_open_order  # type: ignore[method-assign]
        w.completedOrder = self._on_completed_order  # type: ignore[method-assign]
        w.error = self._on_error  # type: ignore[method-assign]

    def clear(self) -> None:
        """A new session: ib_async forgot its trades with the old socket, and so does this."""
        self._said.clear()

    def status_of(self, trade: Trade) -> str | None:
        o = trade.order
        return self._said_of(
            int(o.clientId or 0), int(o.orderId or 0), int(o.permId or trade.orderStatus.permId)
        )

    def _said_of(self, client_id: int, order_id: int, perm_id: int) -> str | None:
        found = [self._said[k] for k in _keys(client_id, order_id, perm_id) if k in self._said]
        return max(found)[1] if found else None

    def _record(self, client_id: int, order_id: int, perm_id: int, status: str) -> None:
        if not status:
            return
        n = next(self._arrivals)
        for key in _keys(client_id, order_id, perm_id):
            self._said[key] = (n, status)

    def _trade(self, client_id: int, order_id: int, perm_id: int) -> Trade | None:
        w = self.ib.wrapper
        trade = w.trades.get(w.orderKey(client_id, order_id, perm_id))
        if trade is None and perm_id > 0:
            trade = w.permId2Trade.get(perm_id)
        return trade

    def _invented(self, trade: Trade | None) -> bool:
        return trade is not None and invented(trade.orderStatus.status, self.status_of(trade))

    def _hear(self, client_id: int, order_id: int, perm_id: int, status: str) -> Trade | None:
        """Record the Gateway's word; the order's trade when its final status was invented until now."""
        try:
            trade = self._trade(client_id, order_id, perm_id)
            was_invented = self._invented(trade)
            self._record(client_id, order_id, perm_id, status)
        except Exception as exc:  # bookkeeping only: ib_async's own handler must still run
            log_every("gateway_word", 10, "WARNING", f"order bookkeeping failed: {exc!r}")
            return None
        return trade if was_invented and status else None

    def _correct(self, trade: Trade, status: str, message: str = "", code: int = 0) -> None:
        """Put the Gateway's word back on an order whose final status ib_async invented, and announce it."""
        last = trade.log[-1] if trade.log else None
        # the Gateway confirming ib_async's own word keeps its error entry (a 201 rejection stays a rejection, with
        # its reason), unless the Gateway's notice is the reason itself (202)
        if trade.orderStatus.status != status or (code and (last is None or last.errorCode != code)):
            event(
                "order_status_put_back",
                client_order_id=trade.order.orderRef,
                order_id=trade.order.orderId,
                invented=trade.orderStatus.status,
                gateway=status,
            )
            trade.orderStatus.status = status
            trade.log.append(TradeLogEntry(self.ib.wrapper.lastTime, status, message, code))
            self.corrected += 1
        self.changed(trade)

    # ------------------------------------------------------------------ wrapped ib_async handlers

    def _on_order_status(
        self,
        orderId: int,
        status: str,
        filled: float,
        remaining: float,
        avgFillPrice: float,
        permId: int,
        parentId: int,
        lastFillPrice: float,
        clientId: int,
        whyHeld: str,
        mktCapPrice: float = 0.0,
    ) -> None:
        invented_trade = self._hear(clientId, orderId, permId, status)
        self._order_status(
            orderId,
            status,
            filled,
            remaining,
            avgFillPrice,
            permId,
            parentId,
            lastFillPrice,
            clientId,
            whyHeld,
            mktCapPrice,
        )
        # ib_async updates the status and announces the order only when a field changed: the Gateway's Cancelled
        # on an order ib_async had already marked Cancelled changes nothing, yet it is now the broker's word
        if invented_trade is not None:
            self._guarded(self._correct, invented_trade, status)

    def _on_open_order(self, orderId: int, contract: Any, order: Any, orderState: Any) -> None:
        if order.whatIf:
            self._open_order(orderId, contract, order, orderState)
            return
        invented_trade = self._hear(order.clientId, order.orderId, order.permId, orderState.status)
        self._open_order(orderId, contract, order, orderState)
        self._guarded(self._keep_trail_trigger, order)
        if invented_trade is not None:
            self._guarded(self._correct, invented_trade, orderState.status)

    def _keep_trail_trigger(self, order: Any) -> None:
        # ib_async copies only auxPrice onto a known order: a TRAIL's trigger, as it has trailed, is in
        # trailStopPrice, which `bin/trader positions` shows as the stop's live trigger
        if order.orderType != "TRAIL":
            return
        trade = self._trade(int(order.clientId or 0), int(order.orderId or 0), int(order.permId or 0))
        if trade is not None and trade.order is not order:
            trade.order.trailStopPrice = order.trailStopPrice

    def _on_completed_order(self, contract: Any, order: Any, orderState: Any) -> None:
        # no order id in this message: IB names a completed order by its permId
        invented_trade = self._hear(order.clientId, 0, order.permId, orderState.status)
        self._completed_order(contract, order, orderState)
        if invented_trade is not None:
            self._guarded(self._correct, invented_trade, orderState.status)

    def _on_error(
        self, reqId: int, errorCode: int, errorString: str, advancedOrderRejectJson: str = ""
    ) -> None:
        w = self.ib.wrapper
        trade = w.trades.get((w.clientId, reqId)) if reqId > 0 else None
        if errorCode == 103 and trade is not None:
            # before ib_async marks the refused order Cancelled and tells everyone: it may go out again
            self._guarded(self.duplicate_id, reqId)
        invented_trade = None
        if errorCode == CANCELLED_NOTICE and trade is not None:
            invented_trade = self._hear(w.clientId, reqId, trade.order.permId, "Cancelled")
        self._error(reqId, errorCode, errorString, advancedOrderRejectJson)
        if invented_trade is not None:  # ib_async ignores errors on an order it holds as done
            self._guarded(
                self._correct, invented_trade, "Cancelled", f"Error {errorCode}: {errorString}", errorCode
            )

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # never into ib_async's decoder: the next message must still be read
            log_every("gateway_word", 10, "WARNING", f"order bookkeeping failed: {exc!r}")
