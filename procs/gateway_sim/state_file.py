"""The simulator's account kept across its own restarts (`--state-file`), as IB keeps an account across Gateway
restarts: positions per contract with their cost basis, cash, realized P&L and commissions, the untraded holdings,
and the counters of order ids, perm ids, exec ids and manual order ids (so none repeats after a restart).

Open orders and the day's executions are NOT kept: a restart drops them (a Gateway restart also drops the day's API
view of other sessions' executions), which keeps this simple. The file is JSON, written whole to a temp file and
moved over the old one (os.replace), so a reader sees either the old or the new account, never half of one.

It must never write on the path of a fill before the fill is sent: `keep_state` polls the account a few times a
second and writes only when it changed. A file that cannot be read is refused (StateFileError), never replaced by
an empty account: starting empty is exactly the mismatch a restart must not cause, and the operator decides.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import asdict, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from loguru import logger

from procs.gateway_sim.account import Holding, SimAccount
from procs.gateway_sim.broker import SimBroker
from procs.gateway_sim.contracts import SimContract
from procs.gateway_sim.holdings import UntradedHoldings

FORMAT = 1
WRITE_INTERVAL = 0.25  # real seconds: at most four writes a second, however many fills


class StateFileError(Exception):
    """One line: which file, what is wrong with it, what to do."""


def snapshot(broker: SimBroker, next_order_id: int) -> dict[str, Any]:
    """The account as plain JSON values (Decimals as strings, so nothing is rounded)."""
    books = broker.books
    return {
        "format": FORMAT,
        "account": broker.account,
        "cash": str(books.cash),
        "realized": str(books.realized),
        "commissions": str(books.commissions),
        "positions": [
            {
                "symbol": h.symbol,
                "con_id": h.con_id,
                "position": str(h.position),
                "basis": str(h.basis),
                "realized": str(h.realized),
                "last_price": str(h.last_price),
            }
            for h in books.holdings.values()
        ],
        "holdings": [
            {
                "contract": {
                    k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(h.contract).items()
                },
                "quantity": str(h.quantity),
                "mark": str(h.mark),
            }
            for h in broker.holdings.all()
        ],
        "next_order_id": next_order_id,
        "counters": broker.counters(),
    }


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    """The whole file or the old one: temp file beside it, fsync, os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(path: Path, account: str) -> dict[str, Any] | None:
    """The kept account, None when there is no file yet (the first run). StateFileError when the file is
    unreadable, not ours, or another account's."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"state file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} simulator state")
        _books(data)  # every number must parse before anything is used
        _holdings(data)
        int(data["next_order_id"])
        {k: int(data["counters"][k]) for k in ("perm_last", "exec_count", "manual_orders")}
        str(data["counters"]["exec_prefix"])
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise StateFileError(
            f"state file {path} is corrupt ({type(exc).__name__}: {str(exc)[:80]}); the account is not started "
            "empty: repair the file, or move it aside to start the account afresh"
        ) from None
    if data["account"] != account:
        raise StateFileError(
            f"state file {path} holds account {str(data['account'])[:20]}, not {account}: use that --account "
            "or another --state-file"
        )
    return data


def restore(broker: SimBroker, data: dict[str, Any]) -> int:
    """Put a loaded account into a broker that has not taken any order yet; returns the next order id."""
    broker.resume(_books(data), _holdings(data), data["counters"])
    return int(data["next_order_id"])


async def keep_state(take: Callable[[], dict[str, Any]], path: Path) -> None:
    """Write the account (`take()`) whenever it changed, a few times a second at most (the fill is sent before)."""
    last = take()
    while True:
        await asyncio.sleep(WRITE_INTERVAL)
        now = take()
        if now != last:
            try:
                write_atomically(path, now)
                last = now
            except OSError as exc:  # a full disk must not stop trading; retried at the next change check
                logger.error("state file {}: cannot write: {}", path, exc.strerror or exc)


def _books(data: dict[str, Any]) -> SimAccount:
    books = SimAccount(str(data["account"]), Decimal(data["cash"]))
    books.realized = Decimal(data["realized"])
    books.commissions = Decimal(data["commissions"])
    for p in data["positions"]:
        books.holdings[str(p["symbol"])] = Holding(
            symbol=str(p["symbol"]),
            con_id=int(p["con_id"]),
            position=Decimal(p["position"]),
            basis=Decimal(p["basis"]),
            realized=Decimal(p["realized"]),
            last_price=Decimal(p["last_price"]),
        )
    return books


def _holdings(data: dict[str, Any]) -> UntradedHoldings:
    held = UntradedHoldings()
    names = {f.name for f in fields(SimContract)}
    for h in data["holdings"]:
        raw = dict(h["contract"])
        if set(raw) - names:
            raise ValueError(f"unknown contract fields {sorted(set(raw) - names)}")
        raw["min_tick"] = Decimal(raw.get("min_tick", "0.01"))
        held.set(SimContract(**raw), Decimal(h["quantity"]), Decimal(h["mark"]))
    return held
