"""Market-data subscriptions on the live session: issue every registered spec (after each connect), re-issue
them after 1101 or when a data farm comes back and their data had stopped, and route each bar and quote.

An adapter between the pure SubscriptionRegistry and ib_async. It must never issue into a session that is
gone (a round started for one session generation stops if another began) and never drop a spec on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from ib_async import ContractDetails

from procs.bridge.subscriptions import SubscriptionRegistry, SubscriptionSpec
from shared.log import event, log_every

if TYPE_CHECKING:
    from ib_async import IB

    from procs.bridge.requests import GatewayRequests
    from shared.config import Settings

MAX_KEPT_BARS = 64  # ib_async appends every bar to its list forever; we publish and forget


class FeedListener(Protocol):
    """Where market data goes (session.Listener, filled in by stream.Streams)."""

    def bar(self, spec: SubscriptionSpec, bar: Any) -> None: ...
    def quote(self, ticker: Any) -> None: ...


class FeedsHost(Protocol):
    """What the feeds use of the session (session.GatewaySession), declared here so this never imports it."""

    @property
    def ib(self) -> IB: ...
    @property
    def subs(self) -> SubscriptionRegistry: ...
    @property
    def listener(self) -> FeedListener: ...
    @property
    def requests(self) -> GatewayRequests: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def accounts(self) -> list[str]: ...
    @property
    def generation(self) -> int: ...
    @property
    def session_up(self) -> bool: ...
    def count(self, name: str, n: float = 1) -> None: ...
    def spawn(self, coro: Awaitable[Any]) -> None: ...


class Feeds:
    """The session's market data: what is subscribed, and where each update goes."""

    def __init__(self, session: FeedsHost) -> None:
        self.session = session
        self.ib = session.ib
        self.subs = session.subs
        self.ib.pendingTickersEvent += self._on_tickers

    def _on_tickers(self, tickers: Any) -> None:
        now = time.monotonic()
        for ticker in tickers:
            self.subs.data_seen(SubscriptionSpec("quotes", ticker.contract.symbol), now)
            self.session.listener.quote(ticker)

    async def issue(self) -> None:
        """Request every spec not live in the current session generation."""
        s = self.session
        gen = s.generation
        specs = self.subs.to_issue(gen)
        found = await asyncio.gather(
            *(s.requests.contract_details(sym) for sym in {sp.symbol for sp in specs}), return_exceptions=True
        )
        contracts = {
            d.contract.symbol: d.contract for d in found if isinstance(d, ContractDetails) and d.contract
        }
        if gen != s.generation or not s.session_up:
            return
        for spec in specs:
            contract = contracts.get(spec.symbol)
            if contract is None:
                log_every(
                    f"unknown:{spec.symbol}", 300, "WARNING", f"no contract for {spec.symbol}: not subscribed"
                )
                continue
            try:
                handle = self._request(spec, contract)
            except ConnectionError:
                return
            self.subs.issued(spec, gen, time.monotonic(), handle)
            s.count("subscriptions_issued")

    def _request(self, spec: SubscriptionSpec, contract: Any) -> Any:
        if spec.kind == "quotes":
            return self.ib.reqMktData(contract, "", False, False)
        bars = self.ib.reqRealTimeBars(contract, spec.bar_seconds, spec.what_to_show, False)

        def on_bar(bars_: Any, has_new: bool) -> None:
            if not has_new or self.subs.get(spec).handle is not bars_:
                return
            self.subs.data_seen(spec, time.monotonic())
            self.session.listener.bar(spec, bars_[-1])
            if len(bars_) > MAX_KEPT_BARS:
                del bars_[:-1]

        bars.updateEvent += on_bar
        return bars

    def reissue(self, specs: list[SubscriptionSpec] | None, why: str, *, tell_gateway: bool) -> None:
        """Re-request `specs` (all when None) with new request ids; after 1101 the Gateway forgot them already,
        so only our side is cleaned up (`tell_gateway=False`)."""
        subs = self.subs.invalidate(specs)
        for sub in subs:
            with contextlib.suppress(ConnectionError):
                self._drop_handle(sub.spec, sub.handle, tell_gateway)
            sub.handle = None
        event("resubscribe", why=why, count=len(subs))
        self.session.count("resubscribe_rounds")
        self.session.spawn(self.issue())

    def _drop_handle(self, spec: SubscriptionSpec, handle: Any, tell_gateway: bool) -> None:
        if handle is None:
            return
        if spec.kind == "bars":
            if tell_gateway:
                self.ib.cancelRealTimeBars(handle)
            else:
                self.ib.wrapper.endSubscription(handle)  # type: ignore[no-untyped-call]
        elif tell_gateway:
            self.ib.cancelMktData(handle.contract)
        else:
            self.ib.wrapper.endTicker(handle, "mktData")

    def resubscribe_account(self) -> None:
        """1101 also loses the account-updates subscription."""
        s = self.session
        if s.settings.ib_account in s.accounts:
            with contextlib.suppress(ConnectionError):
                self.ib.client.reqAccountUpdates(True, s.settings.ib_account)  # type: ignore[no-untyped-call]
