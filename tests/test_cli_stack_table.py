"""bin/stack's table of programs: the registry's start order, whatever order supervisord answers in."""

from __future__ import annotations

from typing import Any

from procs.cli.stack import ordered
from shared.programs import PROGRAM_NAMES


def test_programs_are_listed_in_start_order_then_what_the_registry_does_not_know() -> None:
    answered: dict[str, Any] = {name: {} for name in reversed(PROGRAM_NAMES)} | {
        "zz_extra": {},
        "aa_extra": {},
    }
    names = ordered(answered)
    assert names[: len(PROGRAM_NAMES)] == list(PROGRAM_NAMES)
    assert names[0] == "gateway_sim" and names.index("bridge") < names.index("executor")
    assert names[len(PROGRAM_NAMES) :] == ["aa_extra", "zz_extra"]


def test_a_registry_program_supervisord_does_not_run_is_still_listed() -> None:
    assert "monitor" in ordered({"bridge": {}})
