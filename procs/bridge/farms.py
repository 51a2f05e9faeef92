"""IB's data farms by kind, and which of them the stack depends on; the one order a market-data outage lets through.

A Gateway reports each farm it talks to by name (2103 "Market data farm connection is broken:usfarm", 2105
"HMDS data farm connection is broken:ushmds"). A market-data farm down stops quotes, so new risk cannot be priced
and is refused, but an order that only reduces a position the Gateway holds still goes (closing must never wait for
a quote feed). A historical-data (HMDS) farm down blocks history only. A farm serving contracts the stack never
trades blocks nothing.

Pure (the Gateway's position and working orders come from the ib adapter's `exposure`). It must never let an order through the reduce-only gate that could add to a position or
cross zero, counting the Gateway's working orders of the same side.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

FarmKind = Literal["market", "hmds"]

MARKET_DOWN, MARKET_OK, HMDS_DOWN, HMDS_OK = 2103, 2104, 2105, 2106

# Which farms count. The stack trades US stocks only (SMART routing in USD; the bridge resolves every symbol as a
# US stock), and IB serves their quotes from `usfarm` (its New Jersey twin is `usfarm.nj`) and their history from
# `ushmds` (also seen as `ushmds.nj`): a farm counts when its name up to the first '.' is one of these. `eufarm`,
# `jfarm`, `hfarm`, `cashfarm` (forex), `usopt` (US options), `euhmds`, `cashhmds`, `fundfarm` and the `secdef*`
# farms serve contracts the stack never asks about, so their outages block nothing. A message whose farm name
# cannot be read counts (the safe side: new risk waits rather than trading blind).
USED_FARMS: dict[FarmKind, frozenset[str]] = {
    "market": frozenset({"usfarm"}),
    "hmds": frozenset({"ushmds"}),
}

WHAT_IT_BLOCKS: dict[FarmKind, str] = {
    "market": "new risk refused; reduce-only orders and flatten go",
    "hmds": "history and warm-ups wait; orders unaffected",
}
KIND_WORDS: dict[FarmKind, str] = {"market": "market-data farm", "hmds": "historical-data farm"}


def farm_kind(code: int) -> FarmKind:
    return "market" if code in (MARKET_DOWN, MARKET_OK) else "hmds"


def farm_of(code: int, text: str) -> str:
    """The farm's name as IB sends it after the last ':' ('usfarm'), or '' when the text names none."""
    return text.rsplit(":", 1)[-1].strip().lower() if ":" in text else ""


def farm_counts(kind: FarmKind, name: str) -> bool:
    """Whether an outage of farm `name` of `kind` touches the contracts the stack trades (see USED_FARMS)."""
    if not name:
        return True
    return name.split(".", 1)[0] in USED_FARMS[kind]


def describe(kind: FarmKind, names: list[str]) -> str:
    """One clause for the state's reason: which farm is down and what that blocks."""
    shown = ", ".join(n or "unnamed" for n in sorted(names))
    return f"{KIND_WORDS[kind]} down ({shown}): {WHAT_IT_BLOCKS[kind]}"


def reduce_only_refusal(
    side: str, quantity: Decimal, position: Decimal, reducing_working: Decimal, symbol: str = ""
) -> str:
    """'' when the order only moves the Gateway's position toward zero, counting the working orders that already
    reduce it (they may fill first); else why it is refused, in one clause."""
    what = f"{side} {_plain(quantity)} {symbol}".rstrip() + " is not reduce-only: "
    if position == 0:
        return what + "there is no position to reduce"
    if (side == "SELL") != (position > 0):
        return what + f"it would add to the position of {_plain(position)}"
    if quantity + reducing_working > abs(position):
        return what + (
            f"it would cross zero (position {_plain(position)}, already being reduced by "
            f"{_plain(reducing_working)})"
        )
    return ""


def _plain(d: Decimal) -> str:
    """5.0 -> 5, 0.50 -> 0.5 (IB's floats come as 5.0)."""
    return f"{d.normalize():f}" if d else "0"
