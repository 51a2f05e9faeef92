"""The bridge's ib_async adapter: the one place in procs/bridge that imports ib_async (tests/procs/bridge/
test_one_ib_adapter.py holds the rule).

`IbBroker` (broker.py) owns the IB object; convert.py, word.py (the Gateway's own last word on each order),
placing.py (order ids and the 103 re-place), sync.py (the startup sync's requests) and wire.py (the paced outbox
and the between-messages hook installed on ib_async's client) are its parts. Everything leaves as the stack's
messages (shared.messages) or this package's views (BrokerOrder). The rest of the bridge imports this package's
names from here, never its modules, and never ib_async.
"""

from procs.bridge.ib.broker import BAR_SIZES, BrokerOrder, IbBroker

__all__ = ["BAR_SIZES", "BrokerOrder", "IbBroker"]
