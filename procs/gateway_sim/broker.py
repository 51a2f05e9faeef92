"""The simulated broker: a paper account's order book and matching against the simulated market. Pure: plain
values in, a list of events out, which the server turns into wire messages.

It must never read a clock or the network: times and prices come in as arguments.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Mapping
from decimal import Decimal

from procs.gateway_sim.account import ZERO, SimAccount, ratio
from procs.gateway_sim.contracts import DEFAULT_CONTRACTS, SimContract
from procs.gateway_sim.corrections import correct, rebook
from procs.gateway_sim.holdings import UntradedHoldings
from procs.gateway_sim.order_checks import ORDER_TYPES, invalid_order
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

__all__ = [
    "AccountChanged",
    "Executed",
    "OrderChanged",
    "OrderRejected",
    "PositionChanged",
    "SimBroker",
    "SimEvent",
    "SimExecution",
    "ORDER_TYPES",
    "SimOrder",
    "to_price",
]


def to_price(x: float | Decimal, tick: Decimal) -> Decimal:
    """A price as an exact Decimal on the tick grid (floats via their shortest repr, so 190.01 stays 190.01)."""
    d = x if isinstance(x, Decimal) else Decimal(repr(float(x)))
    return ((d / tick).to_integral_value() * tick).quantize(tick)


class SimBroker:
    """Order book and matching for one paper account.

    MKT fills at once (at the ask/bid when given, else the last price), in chunks of `fill_chunk` shares;
    LMT fills when the price touches its limit, one chunk per price update, so large orders show partial
    fills; STP turns into MKT (STP LMT into LMT) once the price touches the stop. IOC cancels what it could
    not fill on arrival. DAY orders do not expire.

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
        self._opening = SimAccount(
            account, cash
        )  # what a correction rebuilds the books from (resume moves it)
        self.holdings = UntradedHoldings()
        self.max_abs_position: dict[str, Decimal] = {}  # the largest |position| each stock ever reached
        self.commission_per_share = commission_per_share
        self.min_commission = min_commission
        self.max_commission_pct = max_commission_pct
        self.fill_chunk = fill_chunk
        self.contracts = DEFAULT_CONTRACTS if contracts is None else contracts
        # exec ids and perm ids must not repeat across simulator restarts (the stack dedups fills by exec id)
        session = int(time.time()) if session_id is None else session_id
        self._exec_prefix = f"{session & 0xFFFFFFFF:08x}"
        self._perm_base = (session % 100_000) * 10_000
        self._perm_last = self._perm_base  # the last perm id given out
        self._orders: dict[int, SimOrder] = {}
        self._used_ids: set[int] = set()
        self._executions: list[
            SimExecution
        ] = []  # in force, in the order they happened (a correction in place)
        self._replaced: list[
            tuple[SimExecution, str]
        ] = []  # (corrected execution, the execId that replaced it)
        self._exec_count = 0
        self._manual_orders = 0
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
        if existing is not None or order.order_id in self._used_ids:
            return [OrderRejected(order.order_id, 103, "Duplicate order id")]
        self._used_ids.add(order.order_id)
        self._perm_last += 1
        problem = self._invalid(order)
        if problem is not None:
            return [problem]
        working = dataclasses.replace(
            order,
            account=order.account or self.account,
            perm_id=self._perm_last,
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
        events: list[SimEvent] = [OrderChanged(_snapshot(working))]
        events += self._match(working, price_now, now_ns, bid, ask, arriving=True)
        return events

    def _invalid(self, order: SimOrder) -> OrderRejected | None:
        return invalid_order(order, self.account, self._tick(order.symbol))

    def _modify(
        self,
        order: SimOrder,
        new: SimOrder,
        price_now: float,
        now_ns: int,
        bid: float | None,
        ask: float | None,
    ) -> list[SimEvent]:
        # 105 and 321 are warnings to ib_async: the client keeps the order live, as it still is here
        if (new.symbol, new.action) != (order.symbol, order.action):
            return [OrderRejected(order.order_id, 105, "Order being modified does not match original order.")]
        problem = self._invalid(dataclasses.replace(new, account=new.account or order.account))
        if problem is not None:
            return [
                OrderRejected(
                    order.order_id, 321, f"Error validating request:-'bN' : cause - {problem.message}"
                )
            ]
        if new.total_qty < order.filled:
            cause = f"the order size {new.total_qty} is below the quantity already filled ({order.filled})"
            return [OrderRejected(order.order_id, 321, f"Error validating request:-'bN' : cause - {cause}")]
        order.total_qty, order.order_type, order.tif = new.total_qty, new.order_type, new.tif
        if new.order_type == "TRAIL":  # a modify of a trailing stop keeps where it has trailed to
            order.trailing_pct = new.trailing_pct or order.trailing_pct
        else:
            order.lmt_price, order.aux_price = new.lmt_price, new.aux_price
        order.order_ref = new.order_ref or order.order_ref
        if order.remaining == 0:
            order.status = "Filled"
        events: list[SimEvent] = [OrderChanged(_snapshot(order))]
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
        return [OrderChanged(_snapshot(order))]

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
        tick = self._tick(order.symbol)
        buying = order.action == "BUY"
        last = to_price(price, tick)
        touch = to_price(ask if buying and ask else bid if not buying and bid else price, tick)
        events: list[SimEvent] = []
        if order.order_type == "TRAIL" and not order.triggered:
            self._trail(order, last, tick)
        if order.order_type in ("STP", "STP LMT", "TRAIL") and not order.triggered:
            stop = order.aux_price or ZERO
            if not (last >= stop if buying else last <= stop):
                return events
            order.triggered = True
            events.append(OrderChanged(_snapshot(order)))
        if order.order_type in ("MKT", "STP", "TRAIL"):
            while order.is_working:
                events += self._fill(order, min(order.remaining, self.fill_chunk), touch, now_ns)
        else:
            limit = order.lmt_price or ZERO
            # arriving, it must cross the spread; resting, a trade at its limit is enough
            if buying:
                reached = touch <= limit or (not arriving and last <= limit)
            else:
                reached = touch >= limit or (not arriving and last >= limit)
            if reached:
                fill_price = (min(limit, touch) if buying else max(limit, touch)) if arriving else limit
                events += self._fill(order, min(order.remaining, self.fill_chunk), fill_price, now_ns)
        if arriving and order.tif == "IOC" and order.is_working:
            order.status = "Cancelled"
            events.append(OrderChanged(_snapshot(order)))
        if any(isinstance(e, Executed) for e in events):
            events.append(AccountChanged(self.account))
        return events

    def _trail(self, order: SimOrder, last: Decimal, tick: Decimal) -> None:
        """Move a trailing stop's trigger with the price, only ever in the position's favour: a SELL's trigger up
        to pct below the best price since placement, a BUY's down to pct above it."""
        pct = (order.trailing_pct or ZERO) / 100
        if order.action == "SELL":
            trigger = (last * (1 - pct) / tick).to_integral_value(rounding="ROUND_FLOOR") * tick
            if order.aux_price is None or trigger > order.aux_price:
                order.aux_price = trigger
        else:
            trigger = (last * (1 + pct) / tick).to_integral_value(rounding="ROUND_CEILING") * tick
            if order.aux_price is None or trigger < order.aux_price:
                order.aux_price = trigger

    def _reduce_oca(self, filled: SimOrder, qty: Decimal) -> list[SimEvent]:
        """ocaType 3: a fill reduces every other working order of its OCA group by as much (cancelled at 0)."""
        events: list[SimEvent] = []
        for other in self._orders.values():
            if other is filled or not other.is_working or other.oca_group != filled.oca_group:
                continue
            other.total_qty = max(other.filled, other.total_qty - qty)
            if other.remaining <= 0:
                other.status = "Cancelled"
            events.append(OrderChanged(_snapshot(other)))
        return events

    def _fill(self, order: SimOrder, qty: Decimal, price: Decimal, now_ns: int) -> list[SimEvent]:
        order.filled += qty
        order.filled_value += qty * price
        order.avg_fill_price = ratio(order.filled_value, order.filled)
        order.last_fill_price = price
        total = self._commission(order)
        commission, order.commission = total - order.commission, total
        if order.remaining == 0:
            order.status = "Filled"
        bought = order.action == "BUY"
        realized = self.books.book_fill(order.symbol, order.con_id, bought, qty, price, commission)
        self._exec_count += 1
        contract = self.contracts.get(order.symbol)
        execution = SimExecution(
            exec_id=f"{self._exec_prefix}.{self._exec_count:08x}.01.01",
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
            OrderChanged(_snapshot(order)),
            Executed(execution),
            PositionChanged(self.account, order.symbol, order.con_id, holding.position, holding.avg_cost),
            *(self._reduce_oca(order, qty) if order.oca_group else []),
        ]

    def _commission(self, order: SimOrder) -> Decimal:
        """The order's commission so far: per share, at least the minimum, at most a share of its value."""
        return min(
            max(self.commission_per_share * order.filled, self.min_commission),
            self.max_commission_pct * order.filled_value,
        )

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
        self._executions[index] = correct(order, old, qty, fill_price, self._commission, last_of_order)
        self._replaced.append((old, self._executions[index].exec_id))
        self._rebook()
        holding = self.books.holdings[old.symbol]
        return [
            OrderChanged(_snapshot(order)),
            Executed(self._executions[index]),
            PositionChanged(self.account, old.symbol, old.con_id, holding.position, holding.avg_cost),
            AccountChanged(self.account),
        ]

    def _rebook(self) -> None:
        self.books, self._executions = rebook(copy.deepcopy(self._opening), self._executions)
        for symbol in self.books.holdings:
            self._note_position(symbol)

    def next_manual_order_id(self) -> int:
        """Orders a human places in TWS are bound to client 0 with negative ids (IB's reqAutoOpenOrders), so they
        never collide with an API client's ids."""
        self._manual_orders += 1
        return -self._manual_orders

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
        return {
            "perm_last": str(self._perm_last),
            "exec_prefix": self._exec_prefix,
            "exec_count": str(self._exec_count),
            "manual_orders": str(self._manual_orders),
        }

    def resume(self, books: SimAccount, holdings: UntradedHoldings, counters: Mapping[str, str]) -> None:
        """Start from an account kept by an earlier run: its books become the opening ones (a correction of a
        later fill rebuilds from them), the counters go on from where they were. Before any order only."""
        self.books, self._opening = books, copy.deepcopy(books)
        self.holdings = holdings
        self._perm_last = max(self._perm_last, int(counters["perm_last"]))
        self._exec_prefix = str(counters["exec_prefix"])
        self._exec_count = int(counters["exec_count"])
        self._manual_orders = int(counters["manual_orders"])
        for symbol in books.holdings:
            self._note_position(symbol)

    def _tick(self, symbol: str) -> Decimal:
        contract = self.contracts.get(symbol)
        return contract.min_tick if contract else Decimal("0.01")

    # --- queries ------------------------------------------------------------------------------------------

    def order(self, order_id: int) -> SimOrder | None:
        found = self._orders.get(order_id)
        return None if found is None else _snapshot(found)

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [
            _snapshot(o)
            for o in self._orders.values()
            if o.is_working and (client_id is None or o.client_id == client_id)
        ]

    def completed_orders(self) -> list[SimOrder]:
        return [_snapshot(o) for o in self._orders.values() if not o.is_working]

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
        return max((i for i in self._used_ids if i > 0), default=0) + 1

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


def _snapshot(order: SimOrder) -> SimOrder:
    return dataclasses.replace(order)
