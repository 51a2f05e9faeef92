"""The way in for bars, live and in replay alike: validate each bar, then aggregate it to BAR_SECONDS.

One BarIntake serves many symbols (one validator and one aggregator each) and counts rejects by reason.
A rejected bar goes no further. Pure: it never publishes, never logs and never reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from procs.features.bars import BarAggregator
from procs.features.validate import BarValidator, Reject, RejectCounts
from shared.messages import Bar


@dataclass
class BarIntake:
    bar_seconds: int
    spike_sigmas: float = 8.0
    rejects: RejectCounts = field(default_factory=RejectCounts)
    last_reject: Reject | None = None
    _validators: dict[str, BarValidator] = field(default_factory=dict)
    _aggregators: dict[str, BarAggregator] = field(default_factory=dict)

    def add(self, bar: Bar) -> list[Bar]:
        """The BAR_SECONDS bars this bar closes; [] when it was rejected (see last_reject) or closes none."""
        validator = self._validators.get(bar.symbol)
        if validator is None:
            validator = self._validators[bar.symbol] = BarValidator(self.spike_sigmas)
        self.last_reject = validator.check(bar)
        if self.last_reject is not None:
            self.rejects.add(self.last_reject)
            return []
        aggregator = self._aggregators.get(bar.symbol)
        if aggregator is None:
            aggregator = self._aggregators[bar.symbol] = BarAggregator(bar.symbol, self.bar_seconds)
        return aggregator.add(bar)

    def open_bucket_start(self, symbol: str) -> int | None:
        """Start of the bar being built for a symbol, if any."""
        aggregator = self._aggregators.get(symbol)
        return aggregator.open_bucket_start if aggregator else None

    def level_shifts(self) -> int:
        return sum(v.level_shifts for v in self._validators.values())
