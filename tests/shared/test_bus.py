"""The bus over inproc (the same classes as production ipc): numbering, gaps, epochs, Lazy Pirate, ROUTER."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import msgspec
import pytest
import zmq
import zmq.asyncio

from shared.bus import (
    AnswerLater,
    Publisher,
    RequestClient,
    RequestError,
    RequestServer,
    RequestTimeout,
    Subscriber,
    topic_matches,
)
from shared.messages import Bar, BridgeRequest, ContractRequest, HealthRequest, PlaceOrder, Reply


def bar(sym: str = "AAPL", close: float = 1.0) -> Bar:
    return Bar(symbol=sym, start_ns=1, bar_seconds=5, open=1, high=1, low=1, close=close, volume=10)


@pytest.fixture
async def ctx() -> AsyncIterator[zmq.asyncio.Context]:
    c = zmq.asyncio.Context()
    yield c
    c.destroy(linger=0)


async def _first(sub: Subscriber, pub: Publisher, msg: Bar, topic: str = "bar.AAPL") -> None:
    """Publish until the subscription has propagated (the slow-joiner window), bounded."""
    for _ in range(200):
        pub.publish(topic, msg)
        if await sub.recv(timeout=0.01):
            return
    raise AssertionError("subscriber never connected")


async def test_publisher_stamps_envelope_and_numbers_messages(ctx: zmq.asyncio.Context) -> None:
    pub = Publisher(ctx, "inproc://p1", "bridge")
    sub = Subscriber(ctx, ["inproc://p1"], [""])
    await _first(sub, pub, bar())
    pub.publish("bar.AAPL", bar(close=2.0))
    got = await sub.recv(timeout=1)
    assert got is not None
    assert got.msg.source == "bridge" and got.msg.epoch == pub.epoch
    assert got.msg.seq == pub.seq and got.msg.ts_ns > 0 and got.gap == 0
    assert isinstance(got.msg, Bar) and got.msg.close == 2.0
    pub.close()
    sub.close()


async def test_subscriber_detects_a_seq_gap_and_a_new_epoch(ctx: zmq.asyncio.Context) -> None:
    pub = Publisher(ctx, "inproc://p2", "bridge")
    sub = Subscriber(ctx, ["inproc://p2"], [""])
    await _first(sub, pub, bar())
    pub.stream_seqs["bar"] += 3  # three bars lost on the way
    pub.publish("bar.AAPL", bar())
    got = await sub.recv(timeout=1)
    assert got is not None and got.gap == 3 and got.needs_resync
    pub.close()
    restarted = Publisher(ctx, "inproc://p2b", "bridge")  # same program, new process: new epoch
    sub2 = Subscriber(ctx, ["inproc://p2b"], [""])
    sub2.stats.epochs["bridge"] = pub.epoch
    await _first(sub2, restarted, bar())
    assert sub2.stats.new_epochs == 1
    restarted.close()
    sub.close()
    sub2.close()


async def test_a_gap_is_seen_in_a_whole_stream_taken_alone_and_never_in_a_partial_one(
    ctx: zmq.asyncio.Context,
) -> None:
    pub = Publisher(ctx, "inproc://p3", "bridge")
    whole = Subscriber(ctx, ["inproc://p3"], ["bar.", "gateway"])
    partial = Subscriber(ctx, ["inproc://p3"], ["bar.AAPL"])
    await _first(whole, pub, bar())
    await _first(partial, pub, bar())
    while await whole.recv(timeout=0.05) is not None:  # the bars that reached it while `partial` joined
        pass
    for _ in range(5):  # other streams in between: not gaps of the bar stream
        pub.publish("quote.AAPL", bar())
    pub.publish("bar.AAPL", bar())
    got = await whole.recv(timeout=1)
    assert got is not None and got.gap == 0 and not got.needs_resync
    pub.publish("bar.MSFT", bar("MSFT"))  # a bar the partial subscriber does not take
    pub.stream_seqs["bar"] += 2  # two bars lost on the way
    pub.publish("bar.AAPL", bar())
    seen = [await whole.recv(timeout=1), await whole.recv(timeout=1)]
    assert [g.gap for g in seen if g is not None] == [0, 2] and whole.stats.lost == 2
    while (got := await partial.recv(timeout=0.2)) is not None:
        assert got.gap == 0  # its numbers jump, but it never took every bar: no gap is certain
    assert partial.stats.gaps == 0
    for s in (whole, partial):
        s.close()
    pub.close()


async def test_topic_prefix_never_matches_a_longer_symbol() -> None:
    assert topic_matches("bar.AAPL", "bar.")
    assert topic_matches("bar.AAPL", "bar.AAPL")
    assert not topic_matches("bar.AAPLX", "bar.AAPL")


async def test_malformed_frames_are_counted_and_dropped(ctx: zmq.asyncio.Context) -> None:
    raw = ctx.socket(zmq.PUB)
    raw.bind("inproc://p3")
    pub_ok = Publisher(ctx, "inproc://p3ok", "bridge")
    sub = Subscriber(ctx, ["inproc://p3", "inproc://p3ok"], ["bar."])
    await _first(sub, pub_ok, bar())
    good = None
    for _ in range(200):  # until the raw publisher has our subscription too (slow joiner), bounded
        await raw.send_multipart([b"bar.AAPL", b"\xc1garbage"])
        pub_ok.publish("bar.AAPL", bar(close=5.0))
        good = await sub.recv(timeout=0.01)
        if sub.stats.malformed:
            break
    assert sub.stats.malformed >= 1
    assert good is not None and isinstance(good.msg, Bar) and good.msg.close == 5.0
    raw.close(linger=0)
    pub_ok.close()
    sub.close()


async def test_request_client_times_out_then_reopens_and_succeeds(ctx: zmq.asyncio.Context) -> None:
    client = RequestClient(ctx, "inproc://r1", timeout=0.1, retries=1)
    with pytest.raises(RequestTimeout):
        await client.request(HealthRequest())

    async def handler(req: object) -> str:
        return "pong"

    server = RequestServer(ctx, "inproc://r1", BridgeRequest, handler)
    stop = asyncio.Event()
    task = asyncio.create_task(server.serve(stop))
    reply = await client.request(HealthRequest(), timeout=1)
    assert reply.ok and reply.result == "pong" and reply.req_id
    stop.set()
    await task
    server.close()
    client.close()


async def test_a_slow_request_does_not_block_another(ctx: zmq.asyncio.Context) -> None:
    release = asyncio.Event()

    async def handler(req: object) -> str:
        if isinstance(req, ContractRequest):
            await release.wait()  # history-like: slow
            return "slow"
        return "fast"

    server = RequestServer(ctx, "inproc://r2", BridgeRequest, handler)
    stop = asyncio.Event()
    task = asyncio.create_task(server.serve(stop))
    slow_client = RequestClient(ctx, "inproc://r2", timeout=5)
    fast_client = RequestClient(ctx, "inproc://r2", timeout=2)
    slow = asyncio.create_task(slow_client.request(ContractRequest(symbol="AAPL")))
    fast = await fast_client.request(HealthRequest())
    assert fast.result == "fast" and not slow.done()
    release.set()
    assert (await slow).result == "slow"
    stop.set()
    await task
    for c in (slow_client, fast_client):
        c.close()
    server.close()


async def test_malformed_request_gets_an_error_naming_the_field(ctx: zmq.asyncio.Context) -> None:
    async def handler(req: object) -> str:
        if isinstance(req, PlaceOrder) and req.quantity <= 0:
            raise RequestError("quantity must be positive")
        return "ok"

    server = RequestServer(ctx, "inproc://r3", BridgeRequest, handler)
    stop = asyncio.Event()
    task = asyncio.create_task(server.serve(stop))
    raw = ctx.socket(zmq.REQ)
    raw.connect("inproc://r3")
    bad = {
        "kind": "PlaceOrder",
        "req_id": "x1",
        "client_order_id": "c1",
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": "lots",
    }
    await raw.send(msgspec.msgpack.encode(bad))
    reply = msgspec.msgpack.decode(await raw.recv(), type=Reply)
    assert not reply.ok and reply.req_id == "x1" and "quantity" in reply.error
    client = RequestClient(ctx, "inproc://r3", timeout=1)
    refused = await client.request(
        PlaceOrder(client_order_id="c2", symbol="AAPL", side="BUY", quantity=Decimal(-1))
    )
    assert not refused.ok and refused.error == "quantity must be positive"
    assert server.malformed == 1
    stop.set()
    await task
    raw.close(linger=0)
    client.close()
    server.close()


async def test_the_quick_handler_answers_between_two_steps_of_a_busy_callback(
    ctx: zmq.asyncio.Context,
) -> None:
    """take_waiting() answers a waiting order right away, without the event loop (the bridge calls it between two
    Gateway messages); what the quick handler declines goes to the async handler, which answers it later."""
    answered: list[str] = []

    def quick(req: object) -> str:
        if not isinstance(req, PlaceOrder):
            raise AnswerLater
        if req.quantity <= 0:
            raise RequestError("quantity must be positive")
        answered.append(req.client_order_id)
        return "placed now"

    async def handler(req: object) -> str:
        return "answered later"

    server = RequestServer(ctx, "inproc://r4", BridgeRequest, handler, quick=quick)
    raw = ctx.socket(zmq.REQ)
    raw.connect("inproc://r4")
    order = PlaceOrder(req_id="o1", client_order_id="c1", symbol="AAPL", side="BUY", quantity=Decimal(1))
    await raw.send(msgspec.msgpack.encode(order))
    assert await _taken(server)
    assert answered == ["c1"]  # placed inside take_waiting(), no task, no loop turn
    reply = msgspec.msgpack.decode(await raw.recv(), type=Reply)
    assert reply.ok and reply.result == "placed now" and reply.req_id == "o1"
    await raw.send(msgspec.msgpack.encode(PlaceOrder(req_id="o2", client_order_id="c2", symbol="AAPL",
                                                     side="BUY", quantity=Decimal(-1))))  # fmt: skip
    assert await _taken(server)
    refused = msgspec.msgpack.decode(await raw.recv(), type=Reply)
    assert not refused.ok and refused.error == "quantity must be positive"
    await raw.send(msgspec.msgpack.encode(HealthRequest(req_id="h1")))
    assert await _taken(server)
    later = msgspec.msgpack.decode(await asyncio.wait_for(raw.recv(), 2), type=Reply)
    assert later.ok and later.result == "answered later" and answered == ["c1"]
    assert server.take_waiting() == 0  # nothing waiting: one look at the socket, nothing taken
    raw.close(linger=0)
    server.close()


async def _taken(server: RequestServer) -> bool:
    """take_waiting() until it takes something (the request crosses the inproc pipe), bounded."""
    for _ in range(100):
        if server.take_waiting():
            return True
        await asyncio.sleep(0.01)
    return False
