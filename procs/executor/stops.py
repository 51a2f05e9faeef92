"""Protective stops: what the broker should hold for one position, decided from the broker's truth (pure).

Given a symbol's position, its average cost, the configured stop (STOP_LOSS_PERCENT / TRAILING_STOP_PERCENT) and
the stops of ours the ledger and the broker know, it returns the steps that leave exactly one stop of the right
side, type and size: create, resize (IB's modify), or cancel. A stop is an order of ours (orderRef `st-...`), never
an entry order: it must never count as working exposure toward a target. Nothing here sends or writes anything.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from procs.executor.orders import OrderRecord

STOP_PREFIX = "st-"  # a protective stop's orderRef: ours, never an entry
StopKind = Literal["STP", "TRAIL"]


def is_stop(client_order_id: str) -> bool:
    return client_order_id.startswith(STOP_PREFIX)


def new_stop_id(symbol: str, now_ns: int | None = None) -> str:
    now = time.time_ns() if now_ns is None else now_ns
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now / 1e9))
    return f"{STOP_PREFIX}{stamp}-{symbol}-{os.urandom(4).hex()}"


@dataclass(frozen=True, slots=True)
class Create:
    side: Literal["BUY", "SELL"]
    quantity: Decimal
    kind: StopKind
    stop_price: Decimal | None  # STP: the trigger; TRAIL: None (the broker trails from the current price)
    trailing_percent: Decimal | None


@dataclass(frozen=True, slots=True)
class Resize:
    client_order_id: str
    quantity: Decimal  # the order's new total (already filled + the position)


@dataclass(frozen=True, slots=True)
class Remove:
    client_order_id: str
    why: str


@dataclass(frozen=True, slots=True)
class Unprotectable:
    why: str  # e.g. no contract details: alerted, not attempted again and again


Step = Create | Resize | Remove | Unprotectable


def stop_price(kind: StopKind, percent: Decimal, avg_cost: Decimal, long: bool, tick: Decimal) -> Decimal:
    """A fixed stop `percent` below a long's (above a short's) average cost, on the tick, never beyond it."""
    if long:
        return ((avg_cost * (100 - percent) / 100) / tick).to_integral_value(ROUND_FLOOR) * tick
    return ((avg_cost * (100 + percent) / 100) / tick).to_integral_value(ROUND_CEILING) * tick


def plan(
    position: Decimal,
    avg_cost: Decimal,
    spec: tuple[str, Decimal] | None,
    stops: list[OrderRecord],
    tick: Decimal | None,
) -> list[Step]:
    """The steps to one right stop for this position; `stops` are this symbol's unfinished stops of ours."""
    live = [s for s in stops if s.working]
    if position == 0 or spec is None:
        why = "position closed" if position == 0 else "no stop configured"
        return [Remove(s.client_order_id, why) for s in live if s.status != "PENDING_CANCEL"]
    kind: StopKind = "TRAIL" if spec[0] == "TRAIL" else "STP"
    side: Literal["BUY", "SELL"] = "SELL" if position > 0 else "BUY"
    steps: list[Step] = []
    keep: OrderRecord | None = None
    for s in sorted(live, key=lambda s: (s.created_ns, s.client_order_id)):
        if s.status == "PENDING_CANCEL":
            continue
        if s.side != side or str(s.order_type) != kind:
            steps.append(
                Remove(s.client_order_id, f"wrong stop ({s.side} {s.order_type}) for position {position}")
            )
        elif keep is None:
            keep = s
        else:
            steps.append(Remove(s.client_order_id, f"extra stop: {keep.client_order_id} already protects it"))
    size = abs(position)
    if any(s.reported_filled > s.filled or (not s.working and s.pending() > 0) for s in stops):
        return steps  # a stop's fills are still on their way: the position is about to change, decide then
    if keep is not None:
        if keep.quantity - keep.filled != size:
            steps.append(Resize(keep.client_order_id, keep.filled + size))
        return steps
    if any(s.working for s in live):
        return steps  # a stop is still going away (cancel pending): never two at once
    if tick is None or tick <= 0:
        return [*steps, Unprotectable("no contract details (minimum tick unknown): no stop placed")]
    if kind == "TRAIL":
        return [*steps, Create(side, size, kind, None, spec[1])]
    if avg_cost <= 0:
        return [*steps, Unprotectable("average cost unknown: no fixed stop can be priced")]
    return [*steps, Create(side, size, kind, stop_price(kind, spec[1], avg_cost, position > 0, tick), None)]
