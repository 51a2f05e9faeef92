"""The simulated broker: a paper account's order book, its fills booked into the account, corrections, and the
queries the server answers from. Pure: plain values in, a list of events out, which the server turns into wire
messages. When an order fills is matching.py's; what a new order or a modify is refused for, order_checks.py's;
the ids it hands out, broker_ids.py's.

It must never read the network or a clock (but once, for a session id none was given): times and prices come in.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Mapping
from decimal import Decimal

from procs.gateway_sim.account import ZERO, SimAccount
from procs.gateway_sim.broker_ids import BrokerIds
from procs.gateway_sim.contracts import DEFAULT_CONTRACTS, SimContract
from procs.gateway_sim.corrections import correct, rebook
from procs.gateway_sim.holdings import UntradedHoldings
from procs.gateway_sim.matching import Commissions, fill_order, match, reduce_oca, snapshot, to_price
from procs.gateway_sim.order_checks import invalid_order, refused_modification
from procs.gateway_sim.orders import (
    AccountChanged,
    Executed,
    OrderChanged,
    OrderRejected,
    PositionChanged,
    SimEvent,
    SimExecution,
    SimOrder,
)


class SimBroker:
    """Order book, fills and books of one paper account; when an order fills is matching.py's rule.

    An execution can be corrected (IB's correction: a new execId with the next suffix replaces it); the books are
    then rebuilt from the executions in force, so cash, positions and P&L are what they would have been.
    """

    def __init__(
        self,
        account: str,
        cash: Decimal = Decimal("1000000"),
        commission_per_share: Decimal = Decimal("0.005"),
        min_commission: Decimal = Decimal("1.00"),
        max_commission_pct: Decimal = Decimal("0.01"),
        fill_chunk: Decimal = Decimal(500),
        contracts: Mapping[str, SimContract] | None = None,
        session_id: int | None = None,
    ) -> None:
        self.account = account
        self.books = SimAccount(account, cash)
        self.initial_cash = cash
        # what a correction rebuilds the books from (resume moves it)
        self._opening = SimAccount(account, cash)
        self.holdings = UntradedHoldings()
        self.max_abs_position: dict[str, Decimal] = {}  # the largest |position| each stock ever reached
        self.commissions = Commissions(commission_per_share, min_commission, max_commission_pct)
        self.fill_chunk = fill_chunk
        self.contracts = DEFAULT_CONTRACTS if contracts is None else contracts
        # exec ids and perm ids must not repeat across simulator restarts (the stack dedups fills by exec id)
        self._ids = BrokerIds(int(time.time()) if session_id is None else session_id)
        self._orders: dict[int, SimOrder] = {}
        # in force, in the order they happened (a correction in place)
        self._executions: list[SimExecution] = []
        # (corrected execution, the execId that replaced it)
        self._replaced: list[tuple[SimExecution, str]] = []
        self._last_price: dict[str, float] = {}

    # --- orders -------------------------------------------------------------------------------------------

    def place(
        self,
        order: SimOrder,
        price_now: float,
        now_ns: int,
        bid: float | None = None,
        ask: float | None = None,
    ) -> list[SimEvent]:
        """A new order id is accepted (Submitted) and matched at once; a working order's id from the same
        client modifies it; any other used id => 103."""
        self._last_price[order.symbol] = price_now
        existing = self._orders.get(order.order_id)
        if existing is not None and existing.is_working and existing.client_id == order.client_id:
            return self._modify(existing, order, price_now, now_ns, bid, ask)
        if existing is not None or self._ids.is_used(order.order_id):
            return [OrderRejected(order.order_id, 103, "Duplicate order id")]
        perm_id = self._ids.use(order.order_id)
        problem = invalid_order(order, self.account, self._tick(order.symbol))
        if problem is not None:
            return [problem]
        working = dataclasses.replace(
            order,
            account=order.account or self.account,
            perm_id=perm_id,
            status="Submitted",
            filled=ZERO,
            avg_fill_price=ZERO,
            last_fill_price=ZERO,
            filled_value=ZERO,
            commission=ZERO,
            triggered=False,
            placed_ns=now_ns,
        )
        self._orders[working.order_id] = working
        events: list[SimEvent] = [OrderChanged(snapshot(working))]
        events += self._match(working, price_now, now_ns, bid, ask, arriving=True)
        return events

    def _modify(
        self,
        order: SimOrder,
        new: SimOrder,
        price_now: float,
        now_ns: int,
        bid: float | None,
        ask: float | None,
    ) -> list[SimEvent]:
        refused = refused_modification(order, new, self.account, self._tick(new.symbol))
        if refused is not None:
            return [refused]
        order.total_qty, order.order_type, order.tif = new.total_qty, new.order_type, new.tif
        if new.order_type == "TRAIL":  # a modify of a trailing stop keeps where it has trailed to
            order.trailing_pct = new.trailing_pct or order.trailing_pct
        else:
            order.lmt_price, order.aux_price = new.lmt_price, new.aux_price
        order.order_ref = new.order_ref or order.order_ref
        if order.remaining == 0:
            order.status = "Filled"
        events: list[SimEvent] = [OrderChanged(snapshot(order))]
        if order.is_working:
            events += self._match(order, price_now, now_ns, bid, ask, arriving=True)
        return events

    def cancel(self, order_id: int, now_ns: int, client_id: int | None = None) -> list[SimEvent]:
        """Cancelled; an unknown order (or another client's) => 10147, a finished one => 10148."""
        order = self._orders.get(order_id)
        if order is None or (client_id is not None and order.client_id != client_id):
            return [
                OrderRejected(order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found.")
            ]
        if not order.is_working:
            why = f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {order.status}."
            return [OrderRejected(order_id, 10148, why)]
        order.status = "Cancelled"
        return [OrderChanged(snapshot(order))]

    def on_price(
        self, symbol: str, price: float, now_ns: int, bid: float | None = None, ask: float | None = None
    ) -> list[SimEvent]:
        """A new price for `symbol`: working orders it reaches fill (limits one chunk per call)."""
        self._last_price[symbol] = price
        events: list[SimEvent] = []
        for order in [o for o in self._orders.values() if o.symbol == symbol and o.is_working]:
            events += self._match(order, price, now_ns, bid, ask, arriving=False)
        return events

    def fill_now(self, order_id: int, price: float, now_ns: int) -> list[SimEvent]:
        """Fill all that remains of a working order at `price`, whatever its limit (fault injection)."""
        order = self._orders.get(order_id)
        if order is None or not order.is_working:
            return []
        events = self._fill(order, order.remaining, to_price(price, self._tick(order.symbol)), now_ns)
        return [*events, AccountChanged(self.account)]

    # --- matching -----------------------------------------------------------------------------------------

    def _match(
        self, order: SimOrder, price: float, now_ns: int, bid: float | None, ask: float | None, arriving: bool
    ) -> list[SimEvent]:
        def fill(o: SimOrder, qty: Decimal, fill_price: Decimal) -> list[SimEvent]:
            return self._fill(o, qty, fill_price, now_ns)

        events = match(order, price, bid, ask, self._tick(order.symbol), self.fill_chunk, arriving, fill)
        if any(isinstance(e, Executed) for e in events):
            events.append(AccountChanged(self.account))
        return events

    def _fill(self, order: SimOrder, qty: Decimal, price: Decimal, now_ns: int) -> list[SimEvent]:
        commission = fill_order(order, qty, price, self.commissions)
        bought = order.action == "BUY"
        realized = self.books.book_fill(order.symbol, order.con_id, bought, qty, price, commission)
        contract = self.contracts.get(order.symbol)
        execution = SimExecution(
            exec_id=self._ids.next_exec_id(),
            order_id=order.order_id,
            client_id=order.client_id,
            perm_id=order.perm_id,
            account=order.account,
            symbol=order.symbol,
            con_id=order.con_id,
            side="BOT" if bought else "SLD",
            shares=qty,
            price=price,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            time_ns=now_ns,
            order_ref=order.order_ref,
            commission=commission,
            exchange=contract.primary_exchange if contract else "SMART",
            realized_pnl=realized,
        )
        self._executions.append(execution)
        holding = self.books.holdings[order.symbol]
        self._note_position(order.symbol)
        return [
            OrderChanged(snapshot(order)),
            Executed(execution),
            PositionChanged(self.account, order.symbol, order.con_id, holding.position, holding.avg_cost),
            *(reduce_oca(self._orders.values(), order, qty) if order.oca_group else []),
        ]

    def _note_position(self, symbol: str) -> None:
        size = abs(self.books.holdings[symbol].position)
        self.max_abs_position[symbol] = max(self.max_abs_position.get(symbol, ZERO), size)

    # --- corrections, manual orders, untraded holdings -----------------------------------------------------

    def correct_execution(
        self, exec_id: str, price: Decimal | None = None, quantity: Decimal | None = None
    ) -> list[SimEvent]:
        """IB's execution correction: a new execution (same execId up to its last '.', next suffix) replaces
        `exec_id`; the order's fill, the books and the commission follow. ValueError (one line) when refused."""
        index = next((i for i, e in enumerate(self._executions) if e.exec_id == exec_id), None)
        if index is None:
            later = next((by for old, by in self._replaced if old.exec_id == exec_id), None)
            why = f"was already corrected by {later}" if later else "is not an execution of this account"
            raise ValueError(f"correct-execution: {exec_id} {why}")
        old = self._executions[index]
        order = self._orders[old.order_id]
        qty = old.shares if quantity is None else quantity
        fill_price = old.price if price is None else to_price(price, self._tick(old.symbol))
        last_of_order = all(e.order_id != order.order_id for e in self._executions[index + 1 :])
        self._executions[index] = correct(order, old, qty, fill_price, self.commissions, last_of_order)
        self._replaced.append((old, self._executions[index].exec_id))
        self._rebook()
        holding = self.books.holdings[old.symbol]
        return [
            OrderChanged(snapshot(order)),
            Executed(self._executions[index]),
            PositionChanged(self.account, old.symbol, old.con_id, holding.position, holding.avg_cost),
            AccountChanged(self.account),
        ]

    def _rebook(self) -> None:
        self.books, self._executions = rebook(copy.deepcopy(self._opening), self._executions)
        for symbol in self.books.holdings:
            self._note_position(symbol)

    def next_manual_order_id(self) -> int:
        """A negative id for an order a human places in TWS (client 0), never an API client's."""
        return self._ids.next_manual_order_id()

    def set_holding(self, contract: SimContract, quantity: Decimal, mark: Decimal) -> list[SimEvent]:
        """An untraded holding appears, changes or (quantity 0) goes; no cash moves (it was transferred in)."""
        h = self.holdings.set(contract, quantity, mark)
        avg_cost = h.avg_cost if quantity else ZERO
        c = h.contract
        return [
            PositionChanged(self.account, c.symbol, c.con_id, quantity, avg_cost, c),
            AccountChanged(self.account),
        ]

    # --- keeping the account across restarts (state_file) -----------------------------------------------------

    def counters(self) -> dict[str, str]:
        """What must keep counting across a restart so no perm id, exec id or manual order id repeats."""
        return self._ids.counters()

    def resume(self, books: SimAccount, holdings: UntradedHoldings, counters: Mapping[str, str]) -> None:
        """Start from an account kept by an earlier run: its books become the opening ones (a correction of a
        later fill rebuilds from them), the counters go on from where they were. Before any order only."""
        self.books, self._opening = books, copy.deepcopy(books)
        self.holdings = holdings
        self._ids.resume(counters)
        for symbol in books.holdings:
            self._note_position(symbol)

    def _tick(self, symbol: str) -> Decimal:
        contract = self.contracts.get(symbol)
        return contract.min_tick if contract else Decimal("0.01")

    # --- queries ------------------------------------------------------------------------------------------

    def order(self, order_id: int) -> SimOrder | None:
        found = self._orders.get(order_id)
        return None if found is None else snapshot(found)

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [
            snapshot(o)
            for o in self._orders.values()
            if o.is_working and (client_id is None or o.client_id == client_id)
        ]

    def completed_orders(self) -> list[SimOrder]:
        return [snapshot(o) for o in self._orders.values() if not o.is_working]

    def executions(self, client_id: int | None = None, since_ns: int = 0) -> list[SimExecution]:
        """The executions in force (a corrected one is listed in its latest version, as IB lists it)."""
        return [
            e
            for e in self._executions
            if (client_id is None or e.client_id == client_id) and e.time_ns >= since_ns
        ]

    def replaced_executions(self) -> list[tuple[SimExecution, str]]:
        """Corrected executions, each with the execId of the execution that replaced it."""
        return list(self._replaced)

    def positions(self) -> list[PositionChanged]:
        """Every stock traded (closed ones with position 0), then every untraded holding, each its own contract."""
        stocks = [
            PositionChanged(self.account, h.symbol, h.con_id, h.position, h.avg_cost)
            for h in self.books.holdings.values()
        ]
        held = [
            PositionChanged(
                self.account, h.contract.symbol, h.contract.con_id, h.quantity, h.avg_cost, h.contract
            )
            for h in self.holdings.all()
        ]
        return stocks + held

    def position(self, symbol: str) -> Decimal:
        """The account's position in the stock `symbol` (0 when never traded)."""
        holding = self.books.holdings.get(symbol)
        return holding.position if holding else ZERO

    def next_valid_id(self) -> int:
        """One above the highest order id an API client ever used (at least 1)."""
        return self._ids.next_valid_id()

    def last_price(self, symbol: str) -> float | None:
        return self._last_price.get(symbol)

    def account_values(self, mark: Callable[[str], float] | None = None) -> list[tuple[str, str, str]]:
        """(tag, value, currency) rows; holdings valued by `mark`, else the last price the broker saw."""
        return self.books.values(mark or self._mark_last, other_value=self.holdings.value())

    def portfolio(
        self, mark: Callable[[str], float] | None = None
    ) -> list[tuple[str, int, Decimal, float, float, Decimal, float, float]]:
        """(symbol, con_id, position, market_price, market_value, avg_cost, unrealized, realized)."""
        return self.books.portfolio(mark or self._mark_last)

    def _mark_last(self, symbol: str) -> float:
        return self._last_price[symbol]
