"""What every bin/ command does the same way with its arguments: one-line usage errors, sane timeouts, any
bytes taken as text.

A user's mistake ends in one line on stderr and a documented exit code, never in a traceback. Nothing here reads
settings or touches a socket: the commands call these before they do anything.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from typing import NoReturn

EXIT_USAGE = 2
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")  # all that ends a line, and the rest


def printable(text: str) -> str:
    """`text` safe to print anywhere: undecodable bytes as escapes, control characters as spaces."""
    return _CONTROL.sub(" ", text.encode("utf-8", "backslashreplace").decode("utf-8"))


def free_text(arg: str) -> str:
    """An argument as the user meant it: any bytes (argv holds undecodable ones as surrogates) decoded as
    UTF-8 with U+FFFD for what is not UTF-8, control characters as spaces. Safe to encode and to print."""
    return _CONTROL.sub(" ", os.fsencode(arg).decode("utf-8", "replace"))


def _number(text: str, what: str = "seconds") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of {what}: {printable(text)!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number of {what}: {printable(text)!r}")
    return value


def seconds(text: str) -> float:
    """argparse type: a finite number of seconds above zero (a timeout)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {printable(text)!r}")
    return value


def seconds_or_zero(text: str) -> float:
    """argparse type: a finite number of seconds, zero or more (a wait that may be skipped)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 seconds or more: {printable(text)!r}")
    return value


def positive(text: str) -> float:
    """argparse type: a finite number above zero (an amount, a count of days)."""
    value = _number(text, "units")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {printable(text)!r}")
    return value


def zero_or_more(text: str) -> float:
    """argparse type: a finite number, zero or more (a cost, a slippage)."""
    value = _number(text, "units")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {printable(text)!r}")
    return value


def count(text: str) -> int:
    """argparse type: a whole number, zero or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {printable(text)!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {printable(text)!r}")
    return value


class Parser(argparse.ArgumentParser):
    """argparse with a usage error as one line (`prog: what is wrong (see prog --help)`) and exit `usage_exit`."""

    usage_exit = EXIT_USAGE

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {printable(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(self.usage_exit)


def usage_error(prog: str, message: str) -> int:
    """Print a usage error found after parsing (one line) and return the exit code to end with."""
    print(f"{prog}: {printable(message)}", file=sys.stderr)
    return EXIT_USAGE
