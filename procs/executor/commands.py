"""The operator's commands on `executor.req` (bin/trader): status, positions, orders, halt, resume, flatten,
reconcile, accept-broker, health.

Answers are plain maps with decimals as strings, so any client can print them. Halt and flatten act at once
(persisted before the answer); resume is refused while the daily loss is beyond its limit or a symbol's ledger
disagrees with the broker; accept-broker asks the broker afresh and refuses unless the bridge is READY.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from procs.executor import pnl
from procs.executor.accept import AskBroker, accept_broker
from procs.executor.actions import Action, Send
from procs.executor.engine import Executor
from procs.executor.hours import session_at
from procs.executor.view import ExecutorView
from shared.bus import RequestError
from shared.messages import (
    AcceptBrokerRequest,
    FlattenRequest,
    HaltRequest,
    HealthReport,
    HealthRequest,
    OrdersRequest,
    PositionsRequest,
    ReconcileRequest,
    ResumeRequest,
    StatusRequest,
)

Execute = Callable[[list[Action]], Awaitable[None]]


def plain(d: Decimal) -> str:
    """A decimal as people write it: 18.0 -> 18, 1E+2 -> 100, 0.50 -> 0.5."""
    text = f"{d.normalize():f}"
    return "0" if text in ("-0", "") else text


def iso(ns: int | None) -> str:
    if not ns:
        return ""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="seconds")


def status_view(ex: ExecutorView, state: str, extra: dict[str, Any]) -> dict[str, Any]:
    book, marks = ex.holdings(), ex.marks()
    day = ex.day_record()
    market_now = ex.market_now()
    g = ex.gateway
    return {
        "state": state,
        "execution": ex.settings.execution,
        "gateway": g.state if g else "UNKNOWN",
        "orders_allowed": bool(g and g.orders_allowed),
        "gateway_reason": g.reason if g else "",
        "orders_gate": ex.order_gate(),
        "market_time": iso(market_now),
        "market_session": session_at(market_now) if market_now else "unknown",
        "market_hours": ex.settings.market_hours,
        "halted": ex.halt.halted,
        "halt_reason": ex.halt.reason,
        "halt_source": ex.halt.source,
        "halted_since": iso(ex.halt.since_ns) if ex.halt.halted else "",
        "circuit_breaker": ex.circuit_breaker,
        "trading_day": day.trading_day,
        "daily_pnl": str(ex.daily_pnl().quantize(Decimal("0.01"))),
        "daily_loss_limit": str(ex.settings.daily_loss_limit),
        "realized_today": str(day.realized.quantize(Decimal("0.01"))),
        "commissions_today": str(day.commissions.quantize(Decimal("0.01"))),
        # fills whose commission IB has not reported yet: in no day's commissions nor P&L until it comes
        "commissions_unknown": unknown_commissions(ex.unknown_commissions()),
        "unrealized": str(pnl.unrealized(book, marks).quantize(Decimal("0.01"))),
        "gross_exposure": str(pnl.gross_exposure(book, marks).quantize(Decimal("0.01"))),
        "cash_flow": str(ex.cash().quantize(Decimal("0.01"))),
        "positions": sum(1 for q, _ in book.values() if q != 0),
        "working_orders": sum(1 for o in ex.working.values() if o.working),
        "quote_age_s": {s: round((ex.mono() - q.received_ns) / 1e9, 1) for s, q in sorted(ex.quotes.items())},
        "last_rejection": ex.last_rejection,
        "mismatched": {
            s: {"ledger": plain(a), "broker": plain(b)} for s, (a, b) in sorted(ex.blocked.items())
        },
        "flattening": ex.flatten_view(),
        "other_holdings": holdings_view(ex),
        "counters": dict(ex.counters),
        **extra,
    }


def unknown_commissions(n: int) -> str:
    return f"{n} fill(s) without IB's commission yet (not in the P&L until it comes)" if n else ""


def holdings_view(ex: ExecutorView) -> list[dict[str, str]]:
    """Holdings the stack does not trade (options, other stocks, cash): shown, never reconciled."""
    return [
        {
            "symbol": p.symbol,
            "sec_type": p.sec_type,
            "local_symbol": p.local_symbol,
            "quantity": plain(p.quantity),
        }
        for p in sorted(ex.other_holdings.values(), key=lambda p: (p.symbol, p.sec_type, p.con_id))
    ]


def reconcile_view(ex: ExecutorView, extra: dict[str, Any]) -> dict[str, Any]:
    """Ledger and broker side by side, per traded symbol (the broker's figures as of the last reconciliation)."""
    rows = []
    symbols = set(ex.limits.symbols) | set(ex.positions) | set(ex.broker_positions)
    for symbol in sorted(symbols):
        pos = ex.positions.get(symbol)
        ours = pos.quantity if pos else Decimal(0)
        theirs = ex.broker_positions.get(symbol)
        rows.append(
            {
                "symbol": symbol,
                "ledger_quantity": plain(ours),
                "broker_quantity": "" if theirs is None else plain(theirs),
                "difference": "" if theirs is None else plain(theirs - ours),
                "ledger_avg_cost": str((pos.avg_cost if pos else Decimal(0)).quantize(Decimal("0.0001"))),
                "mismatch": symbol in ex.blocked
                or (theirs is not None and abs(theirs - ours) > ex.settings.position_tolerance),
                "working_orders": sum(1 for o in ex.working.values() if o.symbol == symbol and o.working),
            }
        )
    return {
        "symbols": rows,
        "other_holdings": holdings_view(ex),
        "last_reconcile": extra.get("last_reconcile", ""),
        "halted": ex.halt.halted,
        "halt_reason": ex.halt.reason,
    }


def positions_view(ex: ExecutorView) -> list[dict[str, str]]:
    """Each open position with its marks and P&L, and its protective stop at the broker (empty when none)."""
    marks = ex.marks()
    stops = ex.stop_view()
    unprotected = ex.unprotected()
    rows = []
    for symbol in sorted(set(ex.positions) | set(ex.broker_positions)):
        pos = ex.positions.get(symbol)
        qty = pos.quantity if pos else Decimal(0)
        cost = pos.avg_cost if pos else Decimal(0)
        broker = ex.broker_positions.get(symbol)
        if qty == 0 and not broker:
            continue
        mark = pnl.mark_of(symbol, marks, cost)
        rows.append(
            {
                "symbol": symbol,
                "quantity": plain(qty),
                "avg_cost": str(cost.quantize(Decimal("0.0001"))),
                "mark": plain(mark),
                "market_value": str((qty * mark).quantize(Decimal("0.01"))),
                "unrealized": str((qty * (mark - cost)).quantize(Decimal("0.01"))),
                "realized": str((pos.realized if pos else Decimal(0)).quantize(Decimal("0.01"))),
                "broker_quantity": "" if broker is None else plain(broker),
                **stop_columns(stops.get(symbol), unprotected.get(symbol)),
            }
        )
    return rows


def stop_columns(stop: dict[str, str] | None, unprotected_s: float | None) -> dict[str, str]:
    """A position's stop as four columns; a position that should have one and has none says since when."""
    if stop is None:
        state = f"NONE for {unprotected_s:g}s" if unprotected_s is not None else ""
        return {"stop_type": "", "stop_trigger": "", "stop_quantity": "", "stop_state": state}
    return {
        "stop_type": stop["type"],
        "stop_trigger": stop["trigger"],
        "stop_quantity": stop["quantity"],
        "stop_state": stop["state"],
    }


def orders_view(ex: ExecutorView, include_done: bool) -> list[dict[str, str]]:
    orders = ex.orders(limit=50) if include_done else ex.orders(working_only=True, limit=500)
    return [
        {
            "client_order_id": o.client_order_id,
            "symbol": o.symbol,
            "side": o.side,
            "quantity": plain(o.quantity),
            "type": o.order_type,
            "limit": "" if o.limit_price is None else str(o.limit_price),
            "status": o.status,
            "filled": plain(o.filled),
            "avg_price": plain(o.avg_fill_price) if o.filled else "",
            "reason": o.reason,
            "why": o.why,
            "created": iso(o.created_ns),
        }
        for o in orders
    ]


class Commands:
    """The handler behind the executor's RequestServer."""

    def __init__(
        self,
        ex: Executor,
        execute: Execute,
        state: Callable[[], str],
        extra: Callable[[], dict[str, Any]],
        ask_broker: AskBroker | None = None,
    ) -> None:
        self.ex = ex
        self.execute = execute
        self.state = state
        self.extra = extra
        self.ask_broker = ask_broker

    async def handle(self, req: Any) -> Any:
        ex, view = self.ex, self.ex.view
        if isinstance(req, StatusRequest):
            return status_view(view, self.state(), self.extra())
        if isinstance(req, PositionsRequest):
            return positions_view(view)
        if isinstance(req, OrdersRequest):
            return orders_view(view, req.include_done)
        if isinstance(req, HaltRequest):
            if not view.halt.halted:
                await self.execute(ex.trip_halt(req.reason.strip() or "halted by operator", "operator"))
            return status_view(view, self.state(), self.extra())
        if isinstance(req, ResumeRequest):
            refused = ex.resume()
            if refused:
                raise RequestError(refused)
            await self.execute([ex.publish_risk()])
            return status_view(view, self.state(), self.extra())
        if isinstance(req, FlattenRequest):
            return await self._flatten(req)
        if isinstance(req, ReconcileRequest):
            return reconcile_view(view, self.extra())
        if isinstance(req, AcceptBrokerRequest):
            result, actions = await accept_broker(ex, req, self.ask_broker)
            await self.execute(actions)
            return result
        if isinstance(req, HealthRequest):
            return HealthReport(
                program="executor", state=self.state(), reason=view.halt.reason, counters=dict(view.counters)
            )
        raise RequestError(f"unsupported request {type(req).__name__}")

    async def _flatten(self, req: FlattenRequest) -> dict[str, Any]:
        view = self.ex.view
        symbols = [s.strip().upper() for s in req.symbols]
        unknown = [s for s in symbols if s not in view.limits.symbols and s not in view.positions]
        if unknown:
            raise RequestError(
                f"not traded by the stack: {', '.join(unknown)} (SYMBOLS={','.join(sorted(view.limits.symbols))})"
            )
        actions = self.ex.flatten(symbols)
        await self.execute(actions)
        placed = [a.order.client_order_id for a in actions if isinstance(a, Send)]
        return {
            "halted": view.halt.halted,
            "orders": placed,
            "flattening": view.flatten_view(),
            "last_rejection": view.last_rejection,
        }
