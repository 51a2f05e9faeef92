"""An unmodified NautilusTrader TradingNode with the Interactive Brokers data and execution clients, pointed at
the gateway simulator. Runs in the NautilusTrader virtual environment (tests/nautilus/venv.py), never in ours.

    node.py check PORT ACCOUNT   loads AAPL by id (data client) and by contract (execution client), takes quotes,
                                 trade ticks and 5-second bars, buys 10 at market, waits for the position and the
                                 account; prints one "RESULT {json}" line and exits 0 (or 1 after 60 s)
    node.py bench PORT ACCOUNT SYMBOLS
                                 places a LMT BUY 1 @ 1.00 IOC (it never fills) on every 5-second bar it receives,
                                 as the pipeline bench's floor client does, until SIGTERM

It must never patch NautilusTrader: what it shows is what a new user gets.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from decimal import Decimal

from nautilus_trader.adapters.interactive_brokers.common import IB, IBContract
from nautilus_trader.adapters.interactive_brokers.config import (
    InteractiveBrokersDataClientConfig,
    InteractiveBrokersExecClientConfig,
    InteractiveBrokersInstrumentProviderConfig,
    SymbologyMethod,
)
from nautilus_trader.adapters.interactive_brokers.factories import (
    InteractiveBrokersLiveDataClientFactory,
    InteractiveBrokersLiveExecClientFactory,
)
from nautilus_trader.config import (
    LiveExecEngineConfig,
    LoggingConfig,
    RoutingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar, BarType, QuoteTick, TradeTick
from nautilus_trader.model.enums import OrderSide, TimeInForce
from nautilus_trader.model.events import OrderFilled, PositionOpened
from nautilus_trader.model.identifiers import InstrumentId, Venue
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.trading.strategy import Strategy

CLIENT_ID = 98
CHECK_SECONDS = 60.0


class PeerConfig(StrategyConfig, frozen=True):
    instrument_ids: tuple[str, ...]
    mode: str = "check"


class Peer(Strategy):
    def __init__(self, config: PeerConfig) -> None:
        super().__init__(config)
        self.ids = [InstrumentId.from_str(i) for i in config.instrument_ids]
        self.mode = config.mode
        self.seen: dict[str, int] = {"quotes": 0, "trades": 0, "bars": 0, "fills": 0}
        self.ordered = False
        self.position: str = ""
        self.done = threading.Event()

    def on_start(self) -> None:
        for iid in self.ids:
            if self.cache.instrument(iid) is None:
                self.log.error(f"instrument {iid} not loaded")
                continue
            self.subscribe_bars(BarType.from_str(f"{iid}-5-SECOND-LAST-EXTERNAL"))
            if self.mode == "check":
                self.subscribe_quote_ticks(iid)
                self.subscribe_trade_ticks(iid)

    def on_stop(self) -> None:
        """Nothing to undo: the node is going away."""

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.seen["quotes"] += 1
        self._maybe_order()

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.seen["trades"] += 1
        self._maybe_order()

    def on_bar(self, bar: Bar) -> None:
        self.seen["bars"] += 1
        iid = bar.bar_type.instrument_id
        if self.mode == "bench":
            order = self.order_factory.limit(
                iid,
                OrderSide.BUY,
                Quantity.from_int(1),
                Price(Decimal("1.00"), 2),
                time_in_force=TimeInForce.IOC,
            )
            self.submit_order(order)
        else:
            self._maybe_order()

    def _maybe_order(self) -> None:
        if (
            self.mode != "check"
            or self.ordered
            or min(self.seen["quotes"], self.seen["trades"], self.seen["bars"]) < 1
        ):
            return
        self.ordered = True
        self.submit_order(self.order_factory.market(self.ids[0], OrderSide.BUY, Quantity.from_int(10)))

    def on_event(self, event: object) -> None:
        if isinstance(event, OrderFilled):
            self.seen["fills"] += 1
        if isinstance(event, PositionOpened):
            self.position = f"{event.instrument_id} {event.quantity}"
        if self.mode == "check" and self.position and self._account_registered():
            self.done.set()

    def _account_registered(self) -> bool:
        return self.portfolio.account(Venue("INTERACTIVE_BROKERS")) is not None or bool(self.cache.accounts())


def build(port: int, account: str, ids: list[str], mode: str) -> tuple[TradingNode, Peer]:
    by_id = InteractiveBrokersInstrumentProviderConfig(
        symbology_method=SymbologyMethod.IB_SIMPLIFIED, load_ids=frozenset(ids)
    )
    by_contract = InteractiveBrokersInstrumentProviderConfig(
        symbology_method=SymbologyMethod.IB_SIMPLIFIED,
        load_contracts=frozenset(
            IBContract(
                secType="STK", symbol=i.split(".")[0], exchange="SMART", primaryExchange=i.split(".")[1]
            )
            for i in ids
        ),
    )
    config = TradingNodeConfig(
        trader_id="PEER-001",
        logging=LoggingConfig(log_level="INFO", log_colors=False),
        data_clients={
            IB: InteractiveBrokersDataClientConfig(
                ibg_host="127.0.0.1",
                ibg_port=port,
                ibg_client_id=CLIENT_ID,
                use_regular_trading_hours=False,
                instrument_provider=by_id,
            )
        },
        exec_clients={
            IB: InteractiveBrokersExecClientConfig(
                ibg_host="127.0.0.1",
                ibg_port=port,
                ibg_client_id=CLIENT_ID,
                account_id=account,
                instrument_provider=by_contract,
                routing=RoutingConfig(
                    default=True
                ),  # as NautilusTrader's IB examples do: NASDAQ orders go to IB
            )
        },
        exec_engine=LiveExecEngineConfig(reconciliation=True),
        timeout_connection=30.0,
        timeout_reconciliation=10.0,
        timeout_portfolio=10.0,
        timeout_disconnection=5.0,
        timeout_post_stop=1.0,
    )
    node = TradingNode(config=config)
    peer = Peer(PeerConfig(instrument_ids=tuple(ids), mode=mode))
    node.trader.add_strategy(peer)
    node.add_data_client_factory(IB, InteractiveBrokersLiveDataClientFactory)
    node.add_exec_client_factory(IB, InteractiveBrokersLiveExecClientFactory)
    node.build()
    return node, peer


def main(argv: list[str]) -> int:
    mode, port, account = argv[0], int(argv[1]), argv[2]
    ids = [f"{s}.NASDAQ" if "." not in s else s for s in (argv[3].split(",") if len(argv) > 3 else ["AAPL"])]
    node, peer = build(port, account, ids, mode)
    ok = threading.Event()

    def watch() -> None:  # check mode: stop the node once the position and the account are there, or give up
        ok.set() if peer.done.wait(CHECK_SECONDS) else None
        os.kill(os.getpid(), signal.SIGINT)  # the node's own signal handler stops it gracefully

    if mode == "check":
        threading.Thread(target=watch, daemon=True).start()
    try:
        node.run()
    finally:
        node.dispose()
    if mode == "check":
        account_ok = bool(node.cache.accounts())
        print(
            "RESULT " + json.dumps({**peer.seen, "position": peer.position, "account": account_ok}),
            flush=True,
        )
        return 0 if ok.is_set() else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
