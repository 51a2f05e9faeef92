"""Bad input closes only the offending session: garbage, a truncated frame, an unknown message id, a 20 MB length
prefix. These tests need a raw socket to send what no client library would; they only ever open one to a
simulator they started themselves (never to a Gateway port) and close it."""

from __future__ import annotations

import asyncio
import struct

import pytest

from procs.gateway_sim.inprocess import GatewaySim
from tests.gateway_sim.sim_harness import Client, connect, wait_until

pytestmark = pytest.mark.timeout(60)


def framed(*fields: str) -> bytes:
    payload = "".join(f + "\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


async def raw_session(port: int, client_id: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-made API session up to API-ready: handshake, startApi, nextValidId and managedAccounts read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"API\0" + struct.pack(">I", 9) + b"v157..178")
    size = struct.unpack(">I", await reader.readexactly(4))[0]
    assert (await reader.readexactly(size)).split(b"\0")[0] == b"178"
    writer.write(framed("71", "2", str(client_id), ""))
    await writer.drain()
    return reader, writer


async def closed_by_simulator(reader: asyncio.StreamReader) -> bool:
    """Read (and discard) until EOF; True when the simulator closed the connection within 3 s."""
    try:
        async with asyncio.timeout(3):
            while await reader.read(65536):
                pass
        return True
    except TimeoutError:
        return False


async def assert_others_unaffected(good: Client) -> None:
    assert good.ib.isConnected()
    assert await asyncio.wait_for(good.ib.reqCurrentTimeAsync(), 2)


async def test_garbage_instead_of_a_handshake(sim: GatewaySim) -> None:
    good = await connect(sim.port, 1)
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await closed_by_simulator(reader)
    writer.close()
    await assert_others_unaffected(good)
    assert sim.status()["bad_input"] == 1
    good.ib.disconnect()


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(framed("9999", "1"), id="unknown-message-id"),
        pytest.param(framed("hello", "world"), id="garbage-message-id"),
        pytest.param(struct.pack(">I", 20_000_000) + b"x" * 1000, id="20MB-length-prefix"),
        pytest.param(struct.pack(">I", 6) + b"49\x00\xff\xfe\x00", id="not-utf8"),
    ],
)
async def test_bad_message_after_api_start_closes_only_that_session(sim: GatewaySim, bad: bytes) -> None:
    good = await connect(sim.port, 1)
    reader, writer = await raw_session(sim.port, 2)
    await wait_until(lambda: len(sim.status()["sessions"]) == 2, what="the raw session to start")
    writer.write(bad)
    assert await closed_by_simulator(reader)
    writer.close()
    await assert_others_unaffected(good)
    await wait_until(lambda: [s["client_id"] for s in sim.status()["sessions"]] == [1])
    assert sim.status()["bad_input"] == 1
    good.ib.disconnect()


async def test_truncated_frame_then_eof_closes_the_session(sim: GatewaySim) -> None:
    good = await connect(sim.port, 1)
    reader, writer = await raw_session(sim.port, 2)
    writer.write(struct.pack(">I", 40) + b"49\x001\x00")  # promises 40 bytes, sends 5
    writer.write_eof()
    assert await closed_by_simulator(reader)
    writer.close()
    await assert_others_unaffected(good)
    assert sim.status()["bad_input"] == 1
    good.ib.disconnect()
