"""An order that waits while the bridge decodes the Gateway's messages is placed between two of them, not after
the whole read (ib_async decodes a read's ~8 order replies in one callback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import msgspec
import pytest
import zmq
import zmq.asyncio
from ib_async import IB

from procs.bridge.ib.wire import orders_between_messages
from shared.bus import AnswerLater, RequestServer
from shared.messages import BridgeRequest, PlaceOrder, Reply


@pytest.fixture
async def ctx() -> AsyncIterator[zmq.asyncio.Context]:
    c = zmq.asyncio.Context()
    yield c
    c.destroy(linger=0)


async def test_a_waiting_order_is_placed_right_after_the_gateway_message_being_decoded(
    ctx: zmq.asyncio.Context,
) -> None:
    ib = IB()  # a real ib_async client and decoder, never connected
    decoded: list[int] = []
    placed: list[tuple[str, int]] = []  # (order, how many Gateway messages had been decoded by then)
    current_time = ib.wrapper.currentTime

    def seen(time: int) -> None:  # ib_async's own handler, counted
        decoded.append(time)
        current_time(time)

    ib.wrapper.currentTime = seen  # type: ignore[method-assign]

    def quick(req: object) -> str:
        if not isinstance(req, PlaceOrder):
            raise AnswerLater
        placed.append((req.client_order_id, len(decoded)))
        return "placed"

    async def handler(req: object) -> str:
        raise AssertionError("an order with everything known must not wait for the event loop")

    server = RequestServer(ctx, "inproc://bridge-req", BridgeRequest, handler, quick=quick)
    orders_between_messages(ib, server.take_waiting)
    client = ctx.socket(zmq.REQ)
    client.connect("inproc://bridge-req")
    order = PlaceOrder(req_id="o1", client_order_id="c1", symbol="AAPL", side="BUY", quantity=Decimal(1))
    await client.send(msgspec.msgpack.encode(order))
    await asyncio.sleep(0.05)  # the request is waiting in the bridge's socket
    decode = ib.client.decoder.interpret
    decode(["49", "1", "1795000000"])  # type: ignore[no-untyped-call]  # currentTime, being decoded
    assert placed == [("c1", 1)]  # placed right after that message, inside the same callback
    decode(["49", "1", "1795000001"])  # type: ignore[no-untyped-call]
    assert placed == [("c1", 1)] and len(decoded) == 2  # taken once; decoding goes on as before
    reply = msgspec.msgpack.decode(await asyncio.wait_for(client.recv(), 2), type=Reply)
    assert reply.ok and reply.result == "placed"
    client.close(linger=0)
    server.close()
