"""Where the bridge hooks into ib_async's client itself: every encoded message goes through the bridge's paced
outbox (Client.sendMsg replaced, ib_async's own throttle off), waiting orders are taken between two decoded
Gateway messages, and ib_async's log lines for what the bridge reports itself are kept out of the log.

Part of the ib_async adapter (procs/bridge/ib). It must never drop or reorder a message on its own: pacing and
order belong to procs/bridge/outbox.py, this only routes ib_async's traffic there.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from ib_async import IB

LOOK_EVERY = 100e-6  # seconds of decoding between two looks at the request socket

# codes the bridge turns into state changes and logs once per transition (or per interval) itself
_QUIET_CODES = re.compile(r"^(Error|Warning) (1100|1101|1102|2103|2104|2105|2106|2107|2108|2110|2158|10197),")
# per-order, per-fill and per-position lines the bridge writes itself, shorter (procs/bridge/stream.py, api.py)
_OWN_LINES = (
    "placeOrder:",
    "cancelOrder:",
    "openOrder:",
    "orderStatus:",
    "execDetails",
    "commissionReport:",
    "position:",
    "updatePortfolio:",
)


def send_through(ib: IB, send: Callable[[str | None], None]) -> None:
    """Make `send` (the paced outbox) the client's sendMsg: ib_async calls it with every encoded request."""
    client = ib.client
    client.MaxRequests = 0  # ib_async's own throttle is replaced, not stacked
    client.sendMsg = send  # type: ignore[method-assign,assignment]


def writer(ib: IB) -> Callable[[str], None]:
    """What puts one encoded message on the socket, once the outbox lets it go."""
    client = ib.client

    def write(msg: str) -> None:
        client.conn.sendMsg(client._prefix(msg.encode()))  # type: ignore[no-untyped-call]

    return write


def orders_between_messages(ib: IB, take_waiting: Callable[[], object], every: float = LOOK_EVERY) -> None:
    """Let waiting orders jump the queue of the Gateway's messages.

    ib_async decodes everything one read brought in a single callback: the ~8 replies to one order (two openOrder
    among them) take about a millisecond, and the next order of a burst used to wait behind them. Between two
    messages, at most every `every` seconds of decoding (a look costs ~2 us; a bar burst is 100 small messages),
    `take_waiting` looks at the request socket, and orders it holds are placed on the spot by the quick path,
    where ib_async's state is whole."""
    decoder = ib.client.decoder
    interpret = decoder.interpret
    looked = 0.0

    def interpret_then_take_orders(fields: list[str]) -> None:
        nonlocal looked
        interpret(fields)  # type: ignore[no-untyped-call]
        now = time.perf_counter()
        if now - looked >= every:
            looked = now
            take_waiting()

    decoder.interpret = interpret_then_take_orders  # type: ignore[method-assign]


class _QuietCodes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.levelno <= logging.INFO and text.startswith(_OWN_LINES):
            return False
        # our own cancel of a connect attempt (after 326 or an early close) is not an error worth a line
        return not (_QUIET_CODES.match(text) or text == "API connection failed: CancelledError()")


def quiet_ib_async() -> None:
    """Drop ib_async's lines for the codes the bridge reports per transition (1100 storms...) and its per-order
    lines, which the bridge writes itself in short form (routing them cost about a quarter of the bridge's CPU
    in a burst)."""
    for name in ("ib_async.wrapper", "ib_async.client", "ib_async.ib"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _QuietCodes) for f in log.filters):
            log.addFilter(_QuietCodes())
