"""The chaos run's verdicts: the simulator's audit against the ledger, the limits and the halts we observed (pure).

Each check returns one line `CHECK <name>: ok` or `CHECK <name>: VIOLATION <details>` naming the orders, fills
and numbers involved, so a violation can be chased without re-running. Nothing here talks to a process or a
file: the caller hands in the audit, ledger rows and observations. A check must never pass because data is
missing: absent data is a violation that says what was absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

OUR_PREFIX = "ex-"  # the executor's client order ids (IB orderRef)
STOP_PREFIX = (
    "st-"  # the executor's protective stops: ours too (booked, placed once), but they rest on purpose
)
D = Decimal
TRANSIT_GRACE_NS = (
    2 * 10**9
)  # an order the executor sent before a halt may reach the simulator this much later
MAX_LISTED = 5  # items named per violation line


@dataclass
class Verdict:
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        if self.ok:
            return f"CHECK {self.name}: ok"
        more = f" (+{len(self.problems) - MAX_LISTED} more)" if len(self.problems) > MAX_LISTED else ""
        return f"CHECK {self.name}: VIOLATION " + "; ".join(self.problems[:MAX_LISTED]) + more


@dataclass(frozen=True)
class Limits:
    max_position_shares: Decimal
    max_position_notional: Decimal


def dec(value: Any) -> Decimal:
    try:
        return D(str(value))
    except (InvalidOperation, ValueError):
        return D("NaN")


def ours(ref: Any) -> bool:
    return isinstance(ref, str) and ref.startswith((OUR_PREFIX, STOP_PREFIX))


def is_stop_ref(ref: Any) -> bool:
    return isinstance(ref, str) and ref.startswith(STOP_PREFIX)


def live_executions(audit: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The simulator's executions of our orders that no correction replaced."""
    return [e for e in audit.get("executions", []) if ours(e.get("orderRef")) and not e.get("replaced_by")]


def check_fills(audit: Mapping[str, Any], ledger_fills: Sequence[Mapping[str, Any]]) -> Verdict:
    """Every live simulator execution of ours booked exactly once with its quantity and price; nothing invented.

    A ledger row marked `replaced_by` (the executor keeps a corrected fill, marked) must be one the simulator
    replaced, by the same execution; it no longer counts as booked.
    """
    v = Verdict("fills booked once, as executed")
    sim = {e["execId"]: e for e in live_executions(audit)}
    replaced = {e["execId"]: e for e in audit.get("executions", []) if e.get("replaced_by")}
    booked: dict[str, list[Mapping[str, Any]]] = {}
    for f in ledger_fills:
        if f.get("replaced_by"):
            gone = replaced.get(str(f["exec_id"]))
            if gone is None or gone["replaced_by"] != f["replaced_by"]:
                by = gone["replaced_by"] if gone else "nothing (the simulator did not correct it)"
                v.problems.append(
                    f"ledger fill {f['exec_id']} of {f.get('client_order_id')} is marked replaced by "
                    f"{f['replaced_by']}; the simulator replaced it by {by}"
                )
            continue
        booked.setdefault(str(f["exec_id"]), []).append(f)
    for exec_id, e in sim.items():
        rows = booked.get(exec_id, [])
        if not rows:
            v.problems.append(
                f"execution {exec_id} of {e.get('orderRef')} ({e.get('side')} {e.get('quantity')} {e.get('symbol')} "
                f"@ {e.get('price')}) is not in the ledger"
            )
        elif len(rows) > 1:
            v.problems.append(f"execution {exec_id} of {e.get('orderRef')} is booked {len(rows)} times")
        else:
            row = rows[0]
            if dec(row["quantity"]) != dec(e["quantity"]) or dec(row["price"]) != dec(e["price"]):
                v.problems.append(
                    f"execution {exec_id} of {e.get('orderRef')}: simulator {e['quantity']} @ {e['price']}, "
                    f"ledger {row['quantity']} @ {row['price']}"
                )
    for exec_id, rows in booked.items():
        if exec_id in sim:
            continue
        row = rows[0]
        what = f"{row.get('client_order_id')} {row.get('side')} {row.get('quantity')} {row.get('symbol')} @ {row.get('price')}"
        if exec_id in replaced:
            v.problems.append(
                f"ledger fill {exec_id} ({what}) was corrected by {replaced[exec_id]['replaced_by']} "
                "but is still booked"
            )
        else:
            v.problems.append(f"ledger fill {exec_id} ({what}) is not a simulator execution of ours")
    return v


def stock_positions(audit: Mapping[str, Any]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for p in audit.get("positions", []):
        if str(p.get("secType", "STK")) == "STK":
            out[p["symbol"]] = out.get(p["symbol"], D(0)) + dec(p["quantity"])
    return out


def check_positions(
    audit: Mapping[str, Any], ledger_positions: Mapping[str, Decimal], traded: Iterable[str]
) -> Verdict:
    """Per traded symbol, the ledger's position equals the simulator's stock position."""
    v = Verdict("positions: ledger = simulator")
    sim = stock_positions(audit)
    for symbol in sorted(set(traded) | {s for s, q in ledger_positions.items() if q}):
        mine, theirs = ledger_positions.get(symbol, D(0)), sim.get(symbol, D(0))
        if mine != theirs:
            v.problems.append(f"{symbol}: ledger {mine}, simulator {theirs}")
    return v


def check_placements(audit: Mapping[str, Any]) -> Verdict:
    """Each client order id reached the simulator at most once (one new order id per orderRef)."""
    v = Verdict("each client order id placed at most once")
    by_ref: dict[str, list[Mapping[str, Any]]] = {}
    for o in audit.get("orders", []):
        if ours(o.get("orderRef")):
            by_ref.setdefault(o["orderRef"], []).append(o)
    for ref, orders in sorted(by_ref.items()):
        placements = sum(int(o.get("placements", 1)) for o in orders)
        if placements > 1:
            ids = ",".join(str(o.get("orderId")) for o in orders)
            v.problems.append(f"{ref} placed {placements} times (order ids {ids})")
    return v


def check_limits(audit: Mapping[str, Any], limits: Limits, room: Mapping[str, Decimal]) -> Verdict:
    """No position at the simulator ever beyond the limits (plus the shares our manual orders moved)."""
    v = Verdict("positions within limits at the simulator")
    low: dict[str, Decimal] = {}
    for e in audit.get("executions", []):
        price = dec(e.get("price"))
        if price.is_finite() and price > 0:
            low[e["symbol"]] = min(low.get(e["symbol"], price), price)
    peaks = audit.get("max_abs_position")
    if not isinstance(peaks, Mapping):
        v.problems.append("the simulator's audit has no max_abs_position")
        return v
    for symbol, raw in sorted(peaks.items()):
        peak, extra = abs(dec(raw)), room.get(symbol, D(0))
        if peak > limits.max_position_shares + extra:
            v.problems.append(
                f"{symbol} reached {peak} shares > MAX_POSITION_SHARES {limits.max_position_shares}"
                + (f" + {extra} moved by manual orders" if extra else "")
            )
        lowest = low.get(symbol)
        if lowest is not None and (peak - extra) * lowest > limits.max_position_notional:
            v.problems.append(
                f"{symbol} reached {peak} shares ({peak - extra} ours) x {lowest} (its lowest fill) = "
                f"{(peak - extra) * lowest:,.2f} > MAX_POSITION_NOTIONAL {limits.max_position_notional}"
            )
    return v


def reduces(position_before: Decimal, signed_qty: Decimal) -> bool:
    """The order moves the position toward zero without crossing it."""
    after = position_before + signed_qty
    return abs(after) <= abs(position_before) and (after == 0 or (after > 0) == (position_before > 0))


def check_halts(
    audit: Mapping[str, Any],
    halts: Sequence[tuple[int, int, str]],
    sent_ns: Mapping[str, int],
) -> Verdict:
    """No order of ours reached the simulator while halted unless it reduced the broker's position.

    `halts`: (since_ns, last_seen_ns, reason) as observed; `sent_ns`: the executor's send stamp per client order
    id (an order sent before the halt and still in transit is allowed for TRANSIT_GRACE_NS).
    """
    v = Verdict("no position-increasing order placed while halted")
    for o in audit.get("orders", []):
        if not ours(o.get("orderRef")) or "received_ns" not in o:
            continue
        at = int(o["received_ns"])
        for since, until, reason in halts:
            if not since <= at <= until:
                continue
            sent = sent_ns.get(o["orderRef"], 0)
            if sent and sent < since and at - since <= TRANSIT_GRACE_NS:
                continue
            before = dec(o.get("position_before", "NaN"))
            qty = dec(o.get("quantity")) * (1 if o.get("action") == "BUY" else -1)
            if before.is_nan() or not reduces(before, qty):
                v.problems.append(
                    f"{o['orderRef']} (order id {o.get('orderId')}) {o.get('action')} {o.get('quantity')} "
                    f"{o.get('symbol')} reached the simulator {(at - since) / 1e9:.2f}s into a halt ({reason!r}) "
                    f"with the broker at {o.get('position_before')}"
                    + (f"; the executor sent it {(at - sent) / 1e9:.2f}s before" if sent else "")
                )
    return v


def check_simulator_untouched(before: Mapping[str, Any], after: Mapping[str, Any]) -> Verdict:
    """The simulator (the Gateway's stand-in) kept one pid and one start time, and is RUNNING."""
    v = Verdict("simulator never signalled or restarted")
    for key in ("pid", "start", "create_time"):
        if before.get(key) != after.get(key):
            v.problems.append(f"{key} {before.get(key)} -> {after.get(key)}")
    if after.get("statename") != "RUNNING":
        v.problems.append(f"supervisord says {after.get('statename')}")
    return v


def check_protection(
    worst: Mapping[str, tuple[float, str]], reconcile_seconds: float, samples: int, grace: float
) -> Verdict:
    """No position without its protective stop for longer than one reconciliation (plus `grace` for the
    heartbeat's period), counted only while the executor saw the Gateway READY: `worst` is each symbol's longest
    such stretch and when it was seen, from the executor heartbeat's `unprotected`, sampled `samples` times."""
    v = Verdict(f"no position without its stop longer than one reconciliation ({reconcile_seconds:g}s)")
    if samples == 0:
        v.problems.append("the executor's heartbeat was never read: protection not observed")
        return v
    for symbol, (seconds, when) in sorted(worst.items()):
        if seconds > reconcile_seconds + grace:
            v.problems.append(f"{symbol} unprotected {seconds:.1f}s with the Gateway READY (seen {when})")
    return v
