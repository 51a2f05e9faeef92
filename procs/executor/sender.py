"""The executor's order sender: each order, cancel or stop modify goes out at once to the bridge on a free request
socket of a small pool, and the bridge's answer (an ack, a refusal, no answer) goes back to the core.

An adapter: it decides nothing. Just before an order goes out the core says whether it still may (a halt since it
was decided withdraws it); it never retries on its own: a lost answer asks for a reconciliation, which finds the
order by its orderRef.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec

from procs.executor.actions import Action, Cancel, Modify, Send
from procs.executor.engine import Executor
from procs.executor.orders import OrderRecord
from procs.executor.stops import is_stop
from shared.bus import BusClient, RequestFailed, RequestTimeout
from shared.log import log_every
from shared.messages import CancelOrder, ModifyOrder, OrderAck, PlaceOrder

SENDERS = 8  # orders in flight to the bridge at once

Execute = Callable[[list[Action]], Awaitable[None]]
WantReconcile = Callable[[str], None]


class OrderSender:
    """Sends over a pool of request sockets to the bridge; PlaceOrder is idempotent (by orderRef)."""

    def __init__(
        self,
        ex: Executor,
        clients: list[BusClient],
        execute: Execute,
        want_reconcile: WantReconcile,
        count_error: Callable[[], None],
    ) -> None:
        self.ex = ex
        # orders go out concurrently (a REQ socket carries one request at a time)
        self.clients: asyncio.Queue[BusClient] = asyncio.Queue()
        for c in clients:
            self.clients.put_nowait(c)
        self.sending: set[asyncio.Task[None]] = set()
        self.execute = execute
        self.want_reconcile = want_reconcile
        self.count_error = count_error

    def spawn(self, item: Send | Cancel | Modify) -> None:
        """Each order or cancel goes out at once on a free request socket of the pool, never behind another."""
        task = asyncio.create_task(self._send_one(item))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def stop(self) -> None:
        """Cancel what is in flight and close the sockets."""
        tasks = list(self.sending)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while not self.clients.empty():
            self.clients.get_nowait().close()

    async def _send_one(self, item: Send | Cancel | Modify) -> None:
        client = await self.clients.get()
        try:
            if isinstance(item, Send):
                await self.execute(await self._place(client, item))
            elif isinstance(item, Modify):
                await self._modify(client, item)
            else:
                await self._cancel(client, item.client_order_id)
        except Exception as exc:  # one failed send must not take the sender down
            self.count_error()
            log_every("send.error", 10, "ERROR", f"sending {item} failed: {type(exc).__name__}: {exc}")
        finally:
            self.clients.put_nowait(client)

    async def _place(self, client: BusClient, send: Send) -> list[Action]:
        o, instead = self.ex.clear_to_send(send.order)
        if o is None:
            return instead
        req = self.stop_request(o) if is_stop(o.client_order_id) else self.order_request(o)
        try:
            ack = msgspec.convert(await client.call(req, idempotent=True), OrderAck)
        except RequestFailed as exc:
            return self.ex.on_send_refused(o.client_order_id, str(exc))
        except RequestTimeout as exc:
            return self.ex.on_send_lost(o.client_order_id, str(exc))
        return self.ex.on_ack(ack)

    def order_request(self, o: OrderRecord) -> PlaceOrder:
        return PlaceOrder(
            client_order_id=o.client_order_id,
            symbol=o.symbol,
            side=o.side,
            quantity=o.quantity,
            order_type=o.order_type,
            limit_price=o.limit_price,
            oca_group=self.oca_of(o),
        )

    def stop_request(self, o: OrderRecord) -> PlaceOrder:
        """A protective stop: GTC, outside regular hours, its own OCA group (orders that reduce the position join
        it, so a fill of either reduces the other and the two never close more than the position)."""
        spec = self.ex.view.settings.stop_for(o.symbol)
        trail = str(o.order_type) == "TRAIL"
        return PlaceOrder(
            client_order_id=o.client_order_id,
            symbol=o.symbol,
            side=o.side,
            quantity=o.quantity,
            order_type="TRAIL" if trail else "STP",
            stop_price=None if trail else o.limit_price,
            trailing_percent=spec[1] if trail and spec is not None else None,
            tif="GTC",
            outside_rth=True,
            oca_group=o.client_order_id,
        )

    def oca_of(self, o: OrderRecord) -> str:
        """The OCA group of the symbol's live stop when `o` is on the stop's side (it reduces the position, or
        closes it and goes beyond): each fill of one reduces the other, so the two never close more than the
        position -- a stop that fills while a flip works takes its shares off the flip."""
        stops = self.ex.view.stops_of(o.symbol)
        live = [s for s in stops if s.working and s.side == o.side and s.status != "NEW"]
        return live[0].client_order_id if live else ""

    async def _modify(self, client: BusClient, m: Modify) -> None:
        try:
            await client.call(
                ModifyOrder(client_order_id=m.client_order_id, quantity=m.quantity), idempotent=True
            )
        except (RequestFailed, RequestTimeout) as exc:
            log_every(
                "modify.failed", 10, "WARNING", f"modify of {m.client_order_id} failed: {exc}; reconciling"
            )
            self.want_reconcile("a stop modify failed")

    async def _cancel(self, client: BusClient, client_order_id: str) -> None:
        try:
            await client.call(CancelOrder(client_order_id=client_order_id), idempotent=True)
        except (RequestFailed, RequestTimeout) as exc:
            log_every(
                "cancel.failed", 10, "WARNING", f"cancel of {client_order_id} failed: {exc}; reconciling"
            )
            self.want_reconcile("a cancel failed")
