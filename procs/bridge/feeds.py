"""Market-data subscriptions on the live session: issue every registered spec (after each connect), re-issue
them after 1101 or when a data farm comes back and their data had stopped, and route each bar and quote.

Between the pure SubscriptionRegistry and the ib_async adapter (procs/bridge/ib), in the stack's types only. It must
never issue into a session that is gone (a round started for one session generation stops if another began) and
never drop a spec on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from procs.bridge.subscriptions import SubscriptionRegistry, SubscriptionSpec
from shared.log import event, log_every
from shared.messages import Bar, ContractInfo, Quote

if TYPE_CHECKING:
    from procs.bridge.ib import IbBroker
    from shared.config import Settings


class FeedListener(Protocol):
    """Where market data goes (session.Listener, filled in by stream.Streams)."""

    def bar(self, spec: SubscriptionSpec, bar: Bar) -> None: ...
    def quote(self, quote: Quote) -> None: ...


class FeedsHost(Protocol):
    """What the feeds use of the session (session.GatewaySession), declared here so this never imports it."""

    @property
    def broker(self) -> IbBroker: ...
    @property
    def subs(self) -> SubscriptionRegistry: ...
    @property
    def listener(self) -> FeedListener: ...
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
        self.broker = session.broker
        self.subs = session.subs
        self.broker.on_quote = self._on_quote

    def _on_quote(self, symbol: str, quote: Quote | None) -> None:
        self.subs.data_seen(SubscriptionSpec("quotes", symbol), time.monotonic())
        if quote is not None:
            self.session.listener.quote(quote)

    async def issue(self) -> None:
        """Request every spec not live in the current session generation."""
        s = self.session
        gen = s.generation
        specs = self.subs.to_issue(gen)
        found = await asyncio.gather(
            *(self.broker.contract_details(sym) for sym in {sp.symbol for sp in specs}),
            return_exceptions=True,
        )
        known = {d.symbol for d in found if isinstance(d, ContractInfo)}
        if gen != s.generation or not s.session_up:
            return
        for spec in specs:
            if spec.symbol not in known:
                log_every(
                    f"unknown:{spec.symbol}", 300, "WARNING", f"no contract for {spec.symbol}: not subscribed"
                )
                continue
            try:
                handle = self._request(spec)
            except ConnectionError:
                return
            self.subs.issued(spec, gen, time.monotonic(), handle)
            s.count("subscriptions_issued")

    def _request(self, spec: SubscriptionSpec) -> object:
        if spec.kind == "quotes":
            return self.broker.subscribe_quotes(spec.symbol)

        def on_bar(handle: object, bar: Bar) -> None:
            if self.subs.get(spec).handle is not handle:
                return
            self.subs.data_seen(spec, time.monotonic())
            self.session.listener.bar(spec, bar)

        return self.broker.subscribe_bars(spec.symbol, spec.bar_seconds, spec.what_to_show, on_bar)

    def reissue(self, specs: list[SubscriptionSpec] | None, why: str, *, tell_gateway: bool) -> None:
        """Re-request `specs` (all when None) with new request ids; after 1101 the Gateway forgot them already,
        so only our side is cleaned up (`tell_gateway=False`)."""
        subs = self.subs.invalidate(specs)
        for sub in subs:
            if sub.handle is not None:
                with contextlib.suppress(ConnectionError):
                    self.broker.drop_subscription(sub.spec.kind, sub.handle, tell_gateway=tell_gateway)
            sub.handle = None
        event("resubscribe", why=why, count=len(subs))
        self.session.count("resubscribe_rounds")
        self.session.spawn(self.issue())

    def resubscribe_account(self) -> None:
        """1101 also loses the account-updates subscription."""
        s = self.session
        if s.settings.ib_account in s.accounts:
            with contextlib.suppress(ConnectionError):
                self.broker.resubscribe_account()
