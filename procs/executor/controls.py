"""The executor's controls: the kill switch (halt, enforce, resume), the operator's flatten, and the blocks a
position mismatch puts on a symbol until the operator accepts the broker's number.

Part of the core (engine.Executor owns one). A halt is persisted before anything is returned and is never lifted
except by resume; a flatten only ever reduces a position and never crosses zero.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from procs.executor.actions import Action, Publish
from procs.executor.book import Book
from procs.executor.desk import HALT_CANCEL_RESEND_SECONDS, OrderDesk
from procs.executor.ledger import Ledger
from shared.log import event
from shared.messages import Alert, Position


class Controls:
    """The kill switch, the flatten and the mismatch blocks, over the book, the ledger and the order desk."""

    def __init__(self, book: Book, ledger: Ledger, desk: OrderDesk) -> None:
        self.book = book
        self._ledger = ledger
        self.desk = desk

    # ------------------------------------------------------------------ kill switch

    def check_daily_loss(self) -> list[Action]:
        """Trip the kill switch when today's P&L reaches -DAILY_LOSS_LIMIT (it stays until an operator resumes)."""
        b = self.book
        if not b.synced or b.market_now() is None:
            return []  # the day (and so its P&L) is not known before the first reconciliation
        loss = b.daily_pnl()
        if b.halt.halted or loss > -b.limits.daily_loss_limit:
            return []
        return self.trip_halt(
            f"daily loss limit: today's P&L {loss:,.2f} <= -{b.limits.daily_loss_limit:,.2f}", "daily_loss"
        )

    def trip_halt(self, reason: str, source: str) -> list[Action]:
        """Persist the halt, cancel every working order that adds risk, tell everyone."""
        b = self.book
        b.halt = self._ledger.set_halt(reason, source)
        event("halt", reason=repr(reason), source=source)
        b.count("halts")
        alert = Alert(
            severity="CRITICAL",
            code=f"halt.{source}",
            message=f"trading halted: {reason}",
            remedy="look at `bin/trader status`, then `bin/trader resume` when it is safe",
            evidence={"daily_pnl": str(b.daily_pnl())},
        )
        return [*self.enforce_halt(), Publish("alert", alert), b.publish_risk()]

    def enforce_halt(self) -> list[Action]:
        """While halted, cancel every working order of ours that adds risk, again and again until the broker says
        it is gone: a cancel can lose the race to its own placement, or be lost with a connection."""
        halt = self.book.halt
        if not halt.halted:
            return []
        adding = [o for o in self._ledger.working.values() if o.working and not o.reduce_only]
        return self.desk.cancel_orders(adding, f"halted: {halt.reason}", HALT_CANCEL_RESEND_SECONDS)

    def resume(self) -> str | None:
        """Lift the halt; refused (the reason returned) while today's loss is beyond the limit or a symbol's
        ledger still disagrees with the broker. Ends every flatten."""
        b = self.book
        if b.blocked:
            symbol, (ours, theirs) = sorted(b.blocked.items())[0]
            return (
                f"position mismatch in {', '.join(sorted(b.blocked))} ({symbol}: ledger {ours}, broker "
                f"{theirs}): check TWS, then `bin/trader accept-broker {symbol} --reason TEXT`, then resume"
            )
        loss = b.daily_pnl()
        if loss <= -b.limits.daily_loss_limit:
            return (
                f"today's P&L {loss:,.2f} is still beyond -{b.limits.daily_loss_limit:,.2f}: "
                "trading stays halted (raise DAILY_LOSS_LIMIT or wait for the next trading day)"
            )
        b.halt = self._ledger.clear_halt()
        if b.flattening:
            self._ledger.clear_flatten()
            b.flattening = {}
        b.breaker.record_success()
        event("resume")
        return None

    # ------------------------------------------------------------------ flatten: the operator's close-out

    def flatten(self, symbols: list[str]) -> list[Action]:
        """Hold `symbols` (every traded or held symbol when empty, which also halts) at zero until resume: cancel
        what adds risk, then close in reduce-only orders, one working at a time per symbol, never crossing zero."""
        b = self.book
        actions: list[Action] = []
        if not symbols:
            held = {s for s, p in self._ledger.positions.items() if p.quantity != 0}
            symbols = sorted(set(b.limits.symbols) | held | {s for s, q in b.broker_positions.items() if q})
            if not b.halt.halted:
                actions += self.trip_halt("flatten by operator", "flatten")
        self._ledger.set_flatten(symbols)
        b.flattening = self._ledger.flattening()
        b.flat_announced = False
        event("flatten", symbols=",".join(symbols))
        for symbol in symbols:
            actions += self.work_flatten(symbol)
        return actions

    def work_flatten(self, symbol: str) -> list[Action]:
        """One step of a flatten: cancel working orders that add risk; else, with no order working, one reduce-only
        order of at most MAX_ORDER_NOTIONAL toward zero."""
        b = self.book
        left = b.flatten_position(symbol)
        # unsettled: working, or done at the broker with fills still on their way (a FILLED status can come
        # before its last execution): sizing beside one would count those shares twice and cross zero
        mine = [o for o in self._ledger.working.values() if o.symbol == symbol]
        adding = [o for o in mine if o.working and (left == 0 or (o.sign > 0) == (left > 0))]
        if adding:
            return self.desk.cancel_orders(adding, "flatten", HALT_CANCEL_RESEND_SECONDS)
        if mine or left == 0:
            return []
        quantity = abs(left)
        quote = b.quotes.get(symbol)
        if quote is not None and quote.reference > 0 and b.limits.max_order_notional > 0:
            cap = (b.limits.max_order_notional / quote.reference).to_integral_value(rounding="ROUND_FLOOR")
            quantity = min(quantity, max(cap, Decimal(1)))
        side: Literal["BUY", "SELL"] = "SELL" if left > 0 else "BUY"
        return self.desk.place(symbol, side, quantity, why="flatten by operator", operator=True)

    def flatten_step(self) -> list[Action]:
        """The timer's turn: work every flattening symbol, and say so once when all of them are flat."""
        b = self.book
        if not b.flattening:
            return []
        actions: list[Action] = []
        for symbol in sorted(b.flattening):
            actions += self.work_flatten(symbol)
        view = self.flatten_view()
        if not b.flat_announced and all(v["state"] == "flat" for v in view.values()):
            b.flat_announced = True
            fills = sum(self._ledger.fill_count(s) - i.fills_before for s, i in b.flattening.items())
            event("flat", symbols=",".join(sorted(view)), fills=fills)
            actions.append(Publish("alert", Alert(
                severity="INFO", code="flatten.done",
                message=f"flat: {', '.join(sorted(view))} closed with {fills} fill(s)",
                remedy="`bin/trader resume` to trade again",
                evidence={"symbols": sorted(view), "fills": fills})))  # fmt: skip
        return actions

    def flatten_view(self) -> dict[str, dict[str, str]]:
        """Each flattening symbol: what is left, its working order, and whether it is flat yet."""
        b = self.book
        out = {}
        for symbol in sorted(b.flattening):
            working = [o for o in self._ledger.working.values() if o.symbol == symbol]
            left = b.broker_positions.get(symbol, b.position(symbol))
            if b.position(symbol) != left:
                left = max(b.position(symbol), left, key=abs)
            flat = left == 0 and not working
            out[symbol] = {
                "left": f"{left.normalize():f}" if left else "0",
                "working_order": working[0].client_order_id if working else "",
                "state": "flat" if flat else "working",
            }
        return out

    # ------------------------------------------------------------------ the broker's numbers

    def block_mismatch(self, symbol: str, ledger: Decimal, broker: Decimal) -> None:
        """No order at all for `symbol` (reduce-only included) until the operator accepts the broker's number."""
        self._ledger.set_mismatch(symbol, ledger, broker)
        self.book.blocked = self._ledger.mismatches()
        working = [o for o in self._ledger.working.values() if o.symbol == symbol and o.working]
        self.book.count("mismatches")
        event("mismatch_blocked", symbol=symbol, ledger=ledger, broker=broker, working=len(working))

    def unblock(self, symbol: str) -> None:
        """The ledger and the broker agree again (a late fill was booked): the symbol may trade after resume."""
        if symbol in self.book.blocked:
            self._ledger.clear_mismatch(symbol)
            self.book.blocked = self._ledger.mismatches()
            event("mismatch_cleared", symbol=symbol)

    def accept_broker(
        self, symbol: str, broker: Decimal, price: Decimal, *, method: str, operator: str, reason: str
    ) -> tuple[dict[str, object], list[Action]]:
        """Set the ledger's position to the broker's (cash at `price`), audited; the symbol is no longer blocked."""
        b = self.book
        result = self._ledger.accept_broker(
            symbol,
            broker,
            price,
            method=method,
            operator=operator,
            reason=reason,
            trading_day=b.trading_day(),
        )
        b.blocked = self._ledger.mismatches()
        b.forget_day()
        event("accept_broker", **{k: v for k, v in result.items() if k != "symbol"}, symbol=symbol,
              operator=operator, reason=repr(reason))  # fmt: skip
        pos = self._ledger.positions[symbol]
        alert = Alert(
            severity="WARNING",
            code="ledger.accept_broker",
            message=f"{operator or 'the operator'} set the ledger's {symbol} from {result['ledger_before']} to the "
            f"broker's {broker} ({reason})",
            evidence={k: str(v) for k, v in result.items()},
        )
        actions: list[Action] = [
            Publish("position", Position(symbol=symbol, quantity=pos.quantity, avg_cost=pos.avg_cost)),
            Publish("alert", alert),
            b.publish_risk(),
        ]
        return result, actions
