"""Arguments of the control commands: the two ways a command says no, and the small parsers every command uses.

A usage error (CommandError) means the command was typed wrong: the CLI exits 2 and the simulator is unaffected.
A refusal (Refused) means it was typed right but cannot be done now (an unknown execId, a port in use): exit 1.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


class CommandError(Exception):
    """A control command is typed wrong; str() is one line saying what to type instead."""


class Refused(CommandError):
    """A well-formed command the simulator cannot carry out; str() is one line saying why."""


def on_off(argv: list[str], name: str) -> bool:
    if len(argv) != 1 or argv[0].lower() not in ("on", "off"):
        raise CommandError(f"usage: {name} on|off")
    return argv[0].lower() == "on"


def number(argv: list[str], name: str, kind: type[int] | type[float], usage: str) -> Any:
    if len(argv) != 1:
        raise CommandError(f"usage: {name} {usage}")
    return one_number(argv[0], name, kind, usage)


def one_number(text: str, name: str, kind: type[int] | type[float], usage: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise CommandError(f"{name}: {text!r} is not a {kind.__name__}; usage: {name} {usage}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise CommandError(f"{name}: {text!r} is not a finite number; usage: {name} {usage}")
    if value < 0:
        raise CommandError(f"{name}: must not be negative; usage: {name} {usage}")
    return value


def positive_decimal(text: str, name: str, what: str, usage: str) -> Decimal:
    """A finite Decimal above zero, else a usage error naming `what`."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CommandError(f"{name}: {what} {text!r} is not a number; usage: {name} {usage}") from None
    if not value.is_finite() or value <= 0:
        raise CommandError(f"{name}: {what} must be a positive number; usage: {name} {usage}")
    return value
