"""The chaos run's faults: what a bad day does to the stack, each a function that injects one and says what it did.

A fault either returns a short line of what it did, or raises Skip with the reason it could not (the simulator
refused the command, no live order to aim at, a program not up long enough to be killed without supervisord
giving up on it). Faults that end by themselves (silent on -> off, a delay -> 0, a halt -> resume) schedule their
ending as a follow-up; `Chaos.settle_all` runs every follow-up still due, so the quiet phase ends them all.
It must never signal the simulator, and never kill a program that is still starting.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench.chaos_checks import is_stop_ref, live_executions, ours
from bench.chaos_world import Refused, World
from shared.bus import RequestTimeout
from shared.messages import ReconcileRequest

WEIGHTS = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)
DELAY_KINDS = ("executions", "open-orders", "positions", "contract-details", "place")
WORKING = ("PendingSubmit", "PreSubmitted", "Submitted", "ApiPending")  # statuses of a live order
MIN_UP_BEFORE_KILL = (
    4.0  # seconds: supervisord gives up (FATAL) on a program that dies 3 times within startsecs
)
UNTRADED_STOCKS = ("ASML", "SHEL")  # stocks the simulator makes no market in: held, never traded

# A follow-up returns None when done, or seconds after which to try again (e.g. the executor has not yet seen a
# mismatch it is meant to repair).
FollowUp = Callable[[], float | None]


class Skip(Exception):
    """This fault could not be injected now; str() says why, in one line."""


class Armed(Skip):
    """This fault waits for its moment in a follow-up, which counts it when it lands; str() says what it waits for."""


@dataclass
class Pending:
    due: float
    what: str
    run: FollowUp
    tries: int = 0
    max_tries: int = 20
    ends_a_fault: bool = True  # False: a fault still waiting for its moment, dropped when the storm is over


@dataclass
class Chaos:
    world: World
    rng: random.Random
    symbols: tuple[str, ...]
    say: Callable[[str], None]
    weights: dict[str, float] = field(default_factory=dict)
    manual_room: dict[str, Decimal] = field(default_factory=dict)
    pending: list[Pending] = field(default_factory=list)
    has_accept_broker: bool | None = None  # None: not tried yet
    landed: list[tuple[str, str]] = field(default_factory=list)  # (name, what) of faults a follow-up injected
    stop_percent: float = 0.0  # the run's protective stops (0: none, and no stop faults)

    # ------------------------------------------------------------------ plumbing

    def sim(self, *argv: object) -> dict[str, Any]:
        try:
            return self.world.sim(*argv)
        except Refused as exc:
            raise Skip(f"simulator refused `{' '.join(map(str, argv))}`: {exc}") from None
        except OSError as exc:
            raise Skip(f"simulator control socket: {exc}") from None

    def later(
        self, seconds: float, what: str, run: FollowUp, max_tries: int = 20, ends_a_fault: bool = True
    ) -> None:
        self.pending.append(Pending(time.monotonic() + seconds, what, run, 0, max_tries, ends_a_fault))

    def run_due(self, everything: bool = False) -> None:
        """Run the follow-ups that are due (all of them with `everything`); a failing one is said and dropped."""
        now = time.monotonic()
        for p in sorted(self.pending, key=lambda p: p.due):
            if not everything and p.due > now:
                continue
            self.pending.remove(p)
            try:
                again = p.run()
            except (Skip, Refused, OSError, RequestTimeout) as exc:
                self.say(f"follow-up {p.what}: skipped ({exc})")
                continue
            except Exception as exc:  # a long run goes on; the quiet phase and the checks still come
                self.say(f"follow-up {p.what}: skipped (unexpected {exc!r})")
                continue
            if again is not None and p.tries < p.max_tries:
                self.pending.append(dataclasses.replace(p, due=now + again, tries=p.tries + 1))
            elif again is not None:
                self.say(f"follow-up {p.what}: gave up after {p.tries} tries")

    def settle_all(self, deadline: float) -> None:
        """Every follow-up that ends a fault, now, until none is left or the deadline passes (retries sleep
        their delay); faults still waiting for their moment are dropped."""
        self.pending = [p for p in self.pending if p.ends_a_fault]
        while self.pending and time.monotonic() < deadline:
            self.run_due(everything=True)
            if self.pending:
                time.sleep(min(1.0, max(0.0, min(p.due for p in self.pending) - time.monotonic())))

    def audit(self) -> dict[str, Any]:
        got = self.world.audit()
        if got is None:
            raise Skip("the simulator has no `audit` command yet")
        return got

    # ------------------------------------------------------------------ the strategy's weights

    def new_weights(self) -> dict[str, float]:
        """Random hold weights: each symbol long, short or flat; a few left out (flat by omission)."""
        return {s: self.rng.choice(WEIGHTS) for s in self.symbols if self.rng.random() > 0.15}

    def params_text(self) -> str:
        return ",".join(f"{s}={w:g}" for s, w in sorted(self.weights.items()))

    def change_weights(self) -> str:
        self.weights = self.new_weights()
        self.world.set_env("STRATEGY_PARAMS", self.params_text())
        if self.rng.random() < 0.3 and self.world.running_for("strategy") >= MIN_UP_BEFORE_KILL:
            pid = self.world.sigkill("strategy")
            return f"weights {self.params_text() or '(all flat)'}; strategy SIGKILLed (pid {pid})"
        self.world.restart("strategy")
        return f"weights {self.params_text() or '(all flat)'}; strategy restarted"

    # ------------------------------------------------------------------ processes

    def kill(self, program: str) -> str:
        up = self.world.running_for(program)
        if up < MIN_UP_BEFORE_KILL:
            raise Skip(f"{program} up only {up:.1f}s")
        return f"SIGKILL {program} (pid {self.world.sigkill(program)})"

    # ------------------------------------------------------------------ the simulator

    def simple(self, *argv: object) -> str:
        self.sim(*argv)
        return " ".join(map(str, argv))

    def for_a_while(self, on: tuple[object, ...], off: tuple[object, ...], low: float, high: float) -> str:
        self.sim(*on)
        seconds = self.rng.uniform(low, high)

        def end() -> None:
            self.sim(*off)
            self.say(" ".join(map(str, off)))

        self.later(seconds, " ".join(map(str, off)), end)
        return f"{' '.join(map(str, on))} (for {seconds:.1f}s)"

    def order_error(self) -> str:
        """An order-scoped error (informational at IB) on a live order of ours. Marketable orders fill on arrival
        up to 500 shares, the rest one 500-share chunk per price update (INTC's 800-share targets), so live
        orders are rare and short: the simulator's open orders are watched for a while, and the error goes to
        the first live order of ours seen (counted as a fault then, not now)."""
        code = self.rng.choice((10349, 161, 10311))

        def aim() -> float | None:
            live = [o for o in self.sim("status").get("open_orders", []) if ours(o.get("order_ref"))]
            if not live:
                return 0.1
            order = self.rng.choice(live)
            self.sim("error", code, order["order_id"])
            self.landed.append(
                (
                    "order error",
                    f"error {code} on order {order['order_id']} ({order['order_ref']}, {order['status']})",
                )
            )
            return None

        self.later(0.0, f"error {code} on a live order of ours", aim, max_tries=300, ends_a_fault=False)
        raise Armed(f"error {code} goes to the next live order of ours seen within 30 s")

    def next_id_rollback(self) -> str:
        n = self.rng.randint(1, 20)
        self.sim("next-id-rollback", n)
        self.sim("drop")
        return f"next-id-rollback {n}, then drop"

    def fill_while_away(self) -> str:
        away = self.kill("bridge")
        got = self.sim("fill-while-disconnected")
        filled = {k: v for k, v in got.items() if k != "ok"}
        return f"{away}; fill-while-disconnected -> {filled}"

    def correct_execution(self) -> str:
        recent = live_executions(self.audit())[-30:]
        if not recent:
            raise Skip("no execution of ours to correct")
        e = self.rng.choice(recent)
        price = Decimal(str(e["price"])) + self.rng.choice((Decimal("-0.01"), Decimal("0.01"), Decimal(0)))
        argv: list[object] = ["correct-execution", e["execId"], price]
        quantity = Decimal(str(e["quantity"]))
        if quantity > 1 and self.rng.random() < 0.25:
            argv.append(quantity - 1)
        self.sim(*argv)
        return (
            " ".join(map(str, argv))
            + f" ({e['orderRef']} {e['side']} {e['quantity']} {e['symbol']} @ {e['price']})"
        )

    def holding(self) -> str:
        untraded = [s for s in UNTRADED_STOCKS if s not in self.symbols]
        kind = self.rng.choice(("OPT", "CASH", "STK") if untraded else ("OPT", "CASH"))
        symbol = {
            "OPT": self.rng.choice(self.symbols),
            "CASH": self.rng.choice(("EUR", "GBP")),
            "STK": self.rng.choice(untraded or ["-"]),
        }[kind]
        qty = self.rng.choice((1, 2, 5, 10)) * (1000 if kind == "CASH" else 1)
        self.sim("holding", symbol, qty, kind)
        if self.rng.random() < 0.5:
            self.later(
                self.rng.uniform(10, 40), f"holding {symbol} 0 {kind}", lambda: self._unhold(symbol, kind)
            )
        return f"holding {symbol} {qty} {kind}"

    def _unhold(self, symbol: str, kind: str) -> None:
        self.sim("holding", symbol, 0, kind)
        self.say(f"holding {symbol} 0 {kind}")

    def delay(self) -> str:
        kind = self.rng.choice(DELAY_KINDS)
        return self.for_a_while(("delay", kind, round(self.rng.uniform(1, 4), 1)), ("delay", kind, 0), 5, 15)

    # ------------------------------------------------------------------ protective stops

    def cancel_stop(self) -> str:
        """A human cancels one of our protective stops in TWS: the executor must put it back."""
        stops = [o for o in self.sim("status").get("open_orders", []) if is_stop_ref(o.get("order_ref"))]
        if not stops:
            raise Skip("no protective stop working at the simulator")
        order = self.rng.choice(stops)
        self.sim("cancel-order", order["order_id"])
        return f"cancel-order {order['order_id']} ({order['order_ref']}, {order['symbol']} {order['action']})"

    def gap(self) -> str:
        """An overnight gap up to twice the stop's percent either way: some stops fill beyond their trigger."""
        symbol = self.rng.choice(self.symbols)
        percent = round(self.rng.choice((-1, 1)) * self.rng.uniform(0.3, 2.0) * self.stop_percent, 1)
        self.sim("gap", symbol, percent)
        return f"gap {symbol} {percent:+g}%"

    # ------------------------------------------------------------------ the operator

    def halt_then_resume(self) -> str:
        code, out = self.world.trader("halt", "chaos", "operator", "halt")
        if code != 0:
            raise Skip(f"bin/trader halt: exit {code}: {out.splitlines()[-1] if out else ''}")
        seconds = self.rng.uniform(3, 8)
        self.later(seconds, "bin/trader resume", self.resume)
        return f"bin/trader halt (resume in {seconds:.1f}s)"

    def resume(self) -> None:
        code, out = self.world.trader("resume")
        last = out.splitlines()[-1] if out else ""
        self.say("bin/trader resume" + ("" if code == 0 else f": exit {code}: {last}"))

    def manual_order(self) -> str:
        symbol = self.rng.choice(self.symbols)
        side = self.rng.choice(("BUY", "SELL"))
        qty = self.rng.randint(1, 20)
        self.sim("manual-order", symbol, side, qty)
        self.manual_room[symbol] = self.manual_room.get(symbol, Decimal(0)) + qty
        self.later(3.0, f"repair {symbol} after the manual order", lambda: self.repair(symbol, side, qty))
        return f"manual-order {symbol} {side} {qty}"

    def repair(self, symbol: str, side: str, qty: int) -> float | None:
        """The operator's answer to a manual order: accept the broker's position, then resume."""
        status = self.world.status()
        if status is None or not status.get("halted"):
            return 2.0  # the executor has not seen the mismatch yet (or is restarting): look again
        if self.has_accept_broker is not False:
            code, out = self.world.trader("accept-broker", symbol, "--reason", "chaos")
            if code == 2 and "invalid choice" in out:
                self.has_accept_broker = False
                self.say(
                    "bin/trader has no accept-broker yet: undoing manual orders with a reverse one instead"
                )
            else:
                self.has_accept_broker = True
                last = out.splitlines()[-1] if out else ""
                self.say(f"bin/trader accept-broker {symbol} --reason chaos: exit {code}: {last}")
                if code != 0 and "retry" in out:
                    return (
                        3.0  # the broker's position cannot be read now (bridge not READY): as the line says
                    )
        if self.has_accept_broker is False:
            back = "SELL" if side == "BUY" else "BUY"
            self.sim("manual-order", symbol, back, qty)
            self.manual_room[symbol] = self.manual_room.get(symbol, Decimal(0)) + qty
            self.say(f"manual-order {symbol} {back} {qty} (undo)")
        self.resume()
        return None

    def repair_mismatches(self) -> list[str]:
        """At the end: accept the broker's position for every symbol the executor reports as mismatched."""
        try:
            report = self.world.executor(ReconcileRequest(), timeout=10.0)
        except (Refused, RequestTimeout) as exc:
            return [f"reconcile request: {exc}"]
        done = []
        for row in report.get("symbols", []):
            if row.get("mismatch"):
                code, out = self.world.trader(
                    "accept-broker", row["symbol"], "--reason", "chaos: quiet phase"
                )
                done.append(
                    f"accept-broker {row['symbol']}: exit {code}: {out.splitlines()[-1] if out else ''}"
                )
        return done


Fault = Callable[[Chaos], str]

# (name, weight, fault): the weights set how often each comes up. New hold weights are not here: they come on
# their own clock (bench/chaos.py), since each is a burst of orders and must be traded before the next.
CATALOGUE: tuple[tuple[str, float, Fault], ...] = (
    ("kill bridge", 4, lambda c: c.kill("bridge")),
    ("kill executor", 4, lambda c: c.kill("executor")),
    ("kill strategy", 3, lambda c: c.kill("strategy")),
    ("drop", 4, lambda c: c.simple("drop")),
    ("reset", 4, lambda c: c.simple("reset")),
    ("silent", 3, lambda c: c.for_a_while(("silent", "on"), ("silent", "off"), 2, 4)),
    ("1100", 3, lambda c: c.for_a_while(("error", 1100), ("error", c.rng.choice((1101, 1102))), 1, 3)),
    ("1101", 2, lambda c: c.simple("error", 1101)),
    ("1102", 2, lambda c: c.simple("error", 1102)),
    ("2103", 2, lambda c: c.for_a_while(("error", 2103), ("error", 2104), 1, 4)),
    ("2105", 2, lambda c: c.for_a_while(("error", 2105), ("error", 2106), 1, 4)),
    ("10197", 2, lambda c: c.for_a_while(("error", 10197), ("error", 2104), 1, 4)),
    ("order error", 6, Chaos.order_error),
    ("pacing", 2, lambda c: c.for_a_while(("pacing", "on"), ("pacing", "off"), 2, 5)),
    ("next-id-rollback", 2, Chaos.next_id_rollback),
    ("fill-while-disconnected", 3, Chaos.fill_while_away),
    ("correct-execution", 5, Chaos.correct_execution),
    ("manual-order", 2, Chaos.manual_order),
    ("holding", 3, Chaos.holding),
    ("delay", 5, Chaos.delay),
    ("halt", 3, Chaos.halt_then_resume),
)


# with protective stops configured (bench/chaos.py --stops PCT), these join the catalogue
STOP_FAULTS: tuple[tuple[str, float, Fault], ...] = (
    ("cancel-order", 5, Chaos.cancel_stop),
    ("gap", 4, Chaos.gap),
)


def pick(rng: random.Random, with_stops: bool = False) -> tuple[str, Fault]:
    catalogue = CATALOGUE + STOP_FAULTS if with_stops else CATALOGUE
    name, _, fault = rng.choices(catalogue, weights=[w for _, w, _ in catalogue])[0]
    return name, fault
