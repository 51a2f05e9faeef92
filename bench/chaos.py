"""A chaos run anyone can repeat: the whole supervised stack trading a `hold` strategy through a seeded storm of faults.

    .venv/bin/python bench/chaos.py --minutes N [--seed S] [--symbols AAPL,MSFT,...] [--stops PCT [--trailing]]

It starts supervisord with every program in a temporary stack home (tests/support/stack.py), GATEWAY=sim,
STRATEGY=hold, EXECUTION=broker, MARKET_HOURS=always, and for N minutes, every couple of seconds at random
(seeded): changes the hold weights (the .env's STRATEGY_PARAMS, then a clean restart or a SIGKILL of the
strategy), SIGKILLs the bridge, the executor or the strategy, injects simulator faults (drops, resets, a silent
Gateway, 1100/1101/1102, farm codes, 10197, order-scoped errors on live orders, pacing, next-id rollback, fills
while away, execution corrections, a human's orders, untraded holdings, slow answers) and acts as the operator
(halt/resume; accept-broker after a manual order). With `--stops PCT` every position carries a protective stop
(STOP_LOSS_PERCENT, or TRAILING_STOP_PERCENT with --trailing), a human cancels stops in TWS (`cancel-order`) and
prices gap (`gap`), and one more check holds: no position without its stop longer than one reconciliation
(the executor heartbeat's `unprotected`, while its Gateway is READY). Then it quiets the stack and checks, one line each:
`CHECK <name>: ok|VIOLATION <details>`; the last line counts faults, orders, fills and violations.
Exit 0 only with 0 violations; 1 with any; 2 usage; 3 the stack did not come up.

It is a benchmark, not a test: it is not part of the pytest suite. Everything it starts it stops by pid, even on
Ctrl-C or an error; it never signals the simulator (the Gateway's stand-in) and never probes an API port.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.chaos_checks import (  # noqa: E402
    Limits,
    Verdict,
    check_fills,
    check_halts,
    check_limits,
    check_placements,
    check_positions,
    check_protection,
    check_simulator_untouched,
    dec,
    is_stop_ref,
    live_executions,
    ours,
)
from bench.chaos_faults import DELAY_KINDS, WORKING, Armed, Chaos, Fault, Skip, pick  # noqa: E402
from bench.chaos_world import Refused, World  # noqa: E402
from tests.support.stack import ALL_PROGRAMS, Stack, running_stack  # noqa: E402

EXIT_OK, EXIT_VIOLATIONS, EXIT_USAGE, EXIT_NO_STACK = 0, 1, 2, 3
# INTC (~$25): its 800-share targets fill in 500-share chunks, so partial fills and live orders happen
DEFAULT_SYMBOLS = "AAPL,MSFT,NVDA,AMZN,GOOGL,TSLA,AMD,META,INTC"
MEAN_FAULT_SECONDS = 3.0  # one fault every 3 s on average (~200 in 10 minutes), besides the weights
WEIGHTS_EVERY = (3.0, 6.0)  # seconds between new weights (~130 in 10 minutes), uniform
STRATEGY_UP_SECONDS = (
    3.0  # a new weight waits until the strategy has been up this long (its first bar is out)
)
RESTARTED = ("bridge", "features", "strategy", "executor", "watchdog")

# The stack's settings for the run (printed at start). Speed: a 60 s bar closes every 2 real seconds, so a new
# weight is traded within ~2 s; risk limits are a small real account's, with room for a full flip in one order.
STACK_SETTINGS = {
    "GATEWAY": "sim",
    "EXECUTION": "broker",
    "STRATEGY": "hold",
    "MARKET_HOURS": "always",
    "SIM_SPEED": "30",
    # a Monday, an hour into the session: the warm-up's history is that session's bars, and 10 minutes at 30x
    # (5 simulated hours) end before the close
    "SIM_START": "2026-03-02T15:35:00Z",
    "BAR_SECONDS": "60",
    "WARMUP_BARS": "100",
    "LOG_LEVEL": "INFO",
    "POSITION_NOTIONAL": "20000",
    "MAX_POSITION_SHARES": "1000",
    "MAX_POSITION_NOTIONAL": "30000",
    "MAX_ORDER_NOTIONAL": "45000",
    "MAX_GROSS_EXPOSURE": "250000",
    "MAX_OPEN_POSITIONS": "10",
    "DAILY_LOSS_LIMIT": "25000",
    "MAX_ORDERS_PER_MINUTE": "300",
    "PRICE_COLLAR_BPS": "50",
    "ORDER_TYPE": "LMT",
    "ORDER_TIMEOUT_SECONDS": "20",
    "ALLOW_REDUCE_ONLY_WHEN_HALTED": "true",
    "POSITION_TOLERANCE": "0",
    "RECONCILE_SECONDS": "5",
    "CIRCUIT_BREAKER_MAX_ERRORS": "5",
    "RECONNECT_BACKOFF_MAX": "2",
}


STARTED = time.monotonic()


def say(line: str) -> None:
    """One line of the run's log, stamped with seconds since the start."""
    print(f"[{time.monotonic() - STARTED:7.1f}s] {line}", flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/chaos.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, required=True, help="how long the storm lasts")
    p.add_argument("--seed", type=int, default=1, help="seeds the faults and the simulator's prices")
    p.add_argument("--symbols", default=DEFAULT_SYMBOLS, help=f"comma-separated (default {DEFAULT_SYMBOLS})")
    p.add_argument(
        "--keep-home", action="store_true", help="keep the stack home (kept anyway on a violation)"
    )
    p.add_argument(
        "--stops", type=float, default=0.0, metavar="PCT", help="protective stops PCT%% away (0: none)"
    )
    p.add_argument(
        "--trailing", action="store_true", help="with --stops: trailing stops (TRAIL) instead of STP"
    )
    args = p.parse_args(argv)
    if not 0 <= args.stops <= 50:
        p.error("--stops must be above 0 and at most 50 (0: no stops)")
    if args.trailing and not args.stops:
        p.error("--trailing needs --stops PCT")
    if not 0 < args.minutes <= 24 * 60:
        p.error("--minutes must be above 0 and at most a day")
    args.symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    if not args.symbols:
        p.error("--symbols names no symbol")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through running_stack, which stops everything by pid


# ---------------------------------------------------------------------------------------------- phases


def wait_trading(world: World, symbols: tuple[str, ...], timeout: float) -> bool:
    """Wait until the executor is synced with the bridge READY and quotes in for every symbol."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = world.status()
        if st and st.get("gateway") == "READY" and st.get("state") in ("READY", "HALTED"):
            if set(st.get("quote_age_s", {})) >= set(symbols):
                return True
        time.sleep(0.5)
    return False


def simulator_identity(world: World) -> dict[str, Any]:
    info = world.info("gateway_sim")
    pid = int(info.get("pid") or 0)
    created = None
    with contextlib.suppress(psutil.Error):
        created = psutil.Process(pid).create_time() if pid else None
    return {
        "pid": pid,
        "start": info.get("start"),
        "statename": info.get("statename"),
        "create_time": created,
    }


def inject(chaos: Chaos, counts: dict[str, int], name: str, fault: Fault) -> None:
    """One fault, counted when it went in, one line either way."""
    try:
        did = fault(chaos)
    except Armed as exc:
        say(f"armed {name}: {exc}")
        return
    except (Skip, Refused, OSError) as exc:
        say(f"skip {name}: {exc}")
        return
    except Exception as exc:  # a long run goes on: the line says what broke, and the checks still run
        say(f"skip {name}: unexpected {exc!r}")
        return
    counts[name] = counts.get(name, 0) + 1
    say(f"fault {sum(counts.values())}: {did}")


def storm(chaos: Chaos, minutes: float) -> dict[str, int]:
    """Faults at random for `minutes`; returns how many of each went in.

    Two clocks: new weights every WEIGHTS_EVERY seconds (once the strategy that holds the last ones is up, so
    each change is traded), and the other faults at exponential gaps of MEAN_FAULT_SECONDS on average.
    """
    counts: dict[str, int] = {}
    end = time.monotonic() + minutes * 60
    next_fault = next_weights = time.monotonic() + 1.0
    next_revive = time.monotonic() + 5.0
    while time.monotonic() < end:
        chaos.run_due()
        for name, did in chaos.landed:
            counts[name] = counts.get(name, 0) + 1
            say(f"fault {sum(counts.values())}: {did}")
        chaos.landed.clear()
        now = time.monotonic()
        if now >= next_revive:
            next_revive = now + 5.0
            with contextlib.suppress(Exception):
                for what in chaos.world.revive(RESTARTED):
                    say(f"operator: supervisord had given up on {what}; started it again")
        if now >= next_weights and chaos.world.running_for("strategy") >= STRATEGY_UP_SECONDS:
            next_weights = now + chaos.rng.uniform(*WEIGHTS_EVERY)
            inject(chaos, counts, "weights", Chaos.change_weights)
        if now >= next_fault:
            next_fault = now + chaos.rng.expovariate(1 / MEAN_FAULT_SECONDS)
            inject(chaos, counts, *pick(chaos.rng, with_stops=chaos.stop_percent > 0))
        time.sleep(0.1)
    return counts


def quiet(chaos: Chaos, timeout: float) -> list[str]:
    """End every fault, resume, repair mismatches, and wait for a reconciliation with nothing working.

    Returns what still was not quiet at the deadline (empty when the stack settled).
    """
    world = chaos.world
    deadline = time.monotonic() + timeout
    chaos.settle_all(deadline=time.monotonic() + 60)
    for argv in (("silent", "off"), ("pacing", "off"), ("error", 1102), ("error", 2104), ("error", 2106)):
        with contextlib.suppress(Refused, OSError):
            world.sim(*argv)
    for kind in DELAY_KINDS:
        with contextlib.suppress(Refused, OSError):
            world.sim("delay", kind, 0)
    for what in world.revive(RESTARTED):
        say(f"quiet: started {what} again")
    if not wait_trading(world, chaos.symbols, max(5.0, deadline - time.monotonic())):
        return ["the executor never came back READY with the bridge READY and quotes in"]
    for line in chaos.repair_mismatches():
        say(f"quiet: {line}")
    chaos.resume()
    start_count = int((world.status() or {}).get("reconciliations", 0))
    left: list[str] = []
    while time.monotonic() < deadline:
        st = world.status() or {}
        left = []
        if st.get("halted"):
            left.append(f"halted: {st.get('halt_reason')}")
            if "mismatch" in str(st.get("halt_reason", "")).lower():
                for line in chaos.repair_mismatches():
                    say(f"quiet: {line}")
            chaos.resume()
        if int(st.get("reconciliations", 0)) < start_count + 2:
            left.append("no reconciliation since the storm ended")
        if int(st.get("working_orders", 1)) != 0:
            left.append(f"{st.get('working_orders')} working orders in the executor")
        audit = world.audit() or {}
        working = [  # protective stops rest on purpose while their positions are held
            o["orderRef"]
            for o in audit.get("orders", [])
            if ours(o.get("orderRef")) and not is_stop_ref(o.get("orderRef")) and o.get("status") in WORKING
        ]
        if working:
            left.append(f"working at the simulator: {','.join(working[:5])}")
        if not left:
            return []
        time.sleep(2.0)
    return left


def snapshot(
    world: World, timeout: float
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Decimal], dict[str, int]]:
    """The audit and the ledger read together: retried until no execution landed in between."""
    deadline = time.monotonic() + timeout
    while True:
        before = world.audit() or {}
        fills = [dict(r) for r in world.ledger("SELECT * FROM fills")]
        positions = {
            r["symbol"]: dec(r["quantity"]) for r in world.ledger("SELECT symbol, quantity FROM positions")
        }
        sent = {
            r["client_order_id"]: int(r["sent_ns"])
            for r in world.ledger("SELECT client_order_id, sent_ns FROM orders")
        }
        after = world.audit() or {}
        if (
            len(before.get("executions", [])) == len(after.get("executions", []))
            or time.monotonic() > deadline
        ):
            return after, fills, positions, sent
        time.sleep(1.0)


def verdicts(
    world: World, chaos: Chaos, settings: dict[str, str], sim_before: dict[str, Any], unsettled: list[str]
) -> tuple[list[Verdict], dict[str, Any]]:
    audit, fills, positions, sent = snapshot(world, timeout=30)
    out: list[Verdict] = []
    settled = Verdict("stack quiet: resumed, reconciled, nothing working")
    settled.problems.extend(unsettled)
    out.append(settled)
    if not audit:
        missing = Verdict("simulator audit available")
        missing.problems.append("the simulator refused `audit`: nothing below could be checked against it")
        out.append(missing)
    out.append(check_fills(audit, fills))
    out.append(check_positions(audit, positions, chaos.symbols))
    out.append(check_placements(audit))
    limits = Limits(Decimal(settings["MAX_POSITION_SHARES"]), Decimal(settings["MAX_POSITION_NOTIONAL"]))
    out.append(check_limits(audit, limits, chaos.manual_room))
    halts = [(h.since_ns, h.last_seen_ns, h.reason) for h in world.halts]
    out.append(check_halts(audit, halts, sent))
    out.append(check_simulator_untouched(sim_before, simulator_identity(world)))
    if chaos.stop_percent:
        grace = 2 * float(settings.get("HEARTBEAT_SECONDS", "2")) + 1.0  # the beat's own age and sampling
        out.append(check_protection(world.unprotected_worst, world.reconcile_seconds or
                                    float(settings["RECONCILE_SECONDS"]), world.protection_samples, grace))  # fmt: skip
    return out, audit


# ---------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    settings = {**STACK_SETTINGS, "SYMBOLS": ",".join(args.symbols), "SIM_SEED": str(args.seed)}
    chaos_weights = {s: rng.choice((-0.5, 0.5, 1.0)) for s in args.symbols}
    settings["STRATEGY_PARAMS"] = ",".join(f"{s}={w:g}" for s, w in sorted(chaos_weights.items()))
    if args.stops:
        settings["TRAILING_STOP_PERCENT" if args.trailing else "STOP_LOSS_PERCENT"] = f"{args.stops:g}"
    say(f"chaos run: {args.minutes:g} min, seed {args.seed}, symbols {','.join(args.symbols)}")
    say("settings: " + " ".join(f"{k}={v}" for k, v in settings.items()))
    say(
        f"faults: new weights every {WEIGHTS_EVERY[0]:g}-{WEIGHTS_EVERY[1]:g}s, other faults every "
        f"{MEAN_FAULT_SECONDS:g}s on average (exponential gaps)"
    )
    os.umask(0o077)  # the home's .env, ledger and logs private, as the stack demands of a real home
    try:
        with running_stack(settings, programs=ALL_PROGRAMS, timeout=90) as stack:
            return trade_through_the_storm(args, rng, settings, chaos_weights, stack)
    except AssertionError as exc:  # running_stack's wait: a program never reached RUNNING
        say(f"the stack did not come up: {exc}")
        return EXIT_NO_STACK


def trade_through_the_storm(
    args: argparse.Namespace,
    rng: random.Random,
    settings: dict[str, str],
    weights: dict[str, float],
    stack: Stack,
) -> int:
    world = World(stack=stack, log=say)
    say(f"stack home {stack.home}, simulator port {world.port}")
    if not wait_trading(world, args.symbols, timeout=120):
        say(f"the stack did not come up trading within 120 s (executor status: {world.last_status})")
        return EXIT_NO_STACK
    sim_before = simulator_identity(world)
    say(f"simulator pid {sim_before['pid']} (never signalled)")
    world.watch_halts()
    chaos = Chaos(
        world=world, rng=rng, symbols=args.symbols, say=say, weights=weights, stop_percent=args.stops
    )
    try:
        counts = storm(chaos, args.minutes)
        say("storm over: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        unsettled = quiet(chaos, timeout=180)
        say("quiet" if not unsettled else "not quiet at the deadline: " + "; ".join(unsettled))
        results, audit = verdicts(world, chaos, settings, sim_before, unsettled)
    finally:
        world.stop_watching()
    halted_s = sum(h.last_seen_ns - h.since_ns for h in world.halts) / 1e9
    reasons = sorted({h.reason.split(":")[0][:40] for h in world.halts})
    say(f"halts observed: {len(world.halts)}, {halted_s:.0f}s in all ({'; '.join(reasons) or 'none'})")
    if chaos.stop_percent:
        worst = ", ".join(f"{s} {t:.1f}s" for s, (t, _) in sorted(world.unprotected_worst.items())) or "none"
        say(f"protective stops: {world.protection_samples} executor beats read; longest unprotected with the "
            f"Gateway READY: {worst}")  # fmt: skip
    for v in results:
        print(v.line(), flush=True)
    orders = len({o["orderRef"] for o in audit.get("orders", []) if ours(o.get("orderRef"))})
    fills = len(live_executions(audit))
    violations = sum(len(v.problems) for v in results)
    if violations or args.keep_home:
        os.environ["KEEP_STACK_HOME"] = "1"  # running_stack keeps the home (ledger, logs) at exit
        say(f"stack home kept for inspection: {stack.home} (ledger var/data/ledger.sqlite, logs var/log/)")
    print(
        f"faults injected {sum(counts.values())}, orders {orders}, fills {fills}, violations {violations}",
        flush=True,
    )
    return EXIT_OK if violations == 0 else EXIT_VIOLATIONS


def main(argv: list[str]) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("chaos run interrupted: the stack was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
