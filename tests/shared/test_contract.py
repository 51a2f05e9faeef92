"""The bus contract and the program registry hold what the code and supervisord.conf say."""

from __future__ import annotations

import configparser
import typing

from shared import contract, messages
from shared.bus import PUB_SOCKETS, REQ_SOCKETS
from shared.config import SUPERVISED_PROGRAMS
from shared.programs import PROGRAM_NAMES, PROGRAMS, PROTECTED_PROGRAMS, WATCHED_HEARTBEATS
from tests.conftest import REPO


def _subclasses(base: type) -> set[type]:
    out: set[type] = set()
    direct: list[type] = base.__subclasses__()
    for sub in direct:
        out |= {sub} | _subclasses(sub)
    return out


def test_every_published_message_has_its_stream_and_the_static_union_agrees() -> None:
    assert set(contract.STREAMS.values()) == _subclasses(messages.Message)
    assert set(typing.get_args(messages.Published)) == set(contract.STREAMS.values())
    assert set(typing.get_args(contract.PUBLISHED)) == set(contract.STREAMS.values())


def test_every_request_has_a_reply_type_and_each_server_decodes_what_it_serves() -> None:
    assert set(contract.REPLIES) == _subclasses(messages.Request)
    for program, union in (
        ("bridge", messages.BridgeRequest),
        ("executor", messages.ExecutorRequest),
        ("monitor", messages.MonitorRequest),
    ):
        assert set(contract.SERVED[program]) == set(typing.get_args(union)), program
        assert set(typing.get_args(contract.served_union(program))) == set(typing.get_args(union))
    assert set(contract.SERVED) == set(REQ_SOCKETS)


def test_supervisord_conf_runs_exactly_the_registry_in_its_order() -> None:
    conf = configparser.RawConfigParser()
    conf.read(REPO / "supervisord.conf")
    sections = {s.removeprefix("program:"): conf[s] for s in conf.sections() if s.startswith("program:")}
    assert set(sections) == {p.name for p in PROGRAMS}
    for p in PROGRAMS:
        section = sections[p.name]
        assert int(section["priority"]) == p.priority, p.name
        assert section["command"].endswith(f"-m {p.module}"), p.name
        assert section["exitcodes"].replace(" ", "") == "0,78", (
            p.name
        )  # shared/exitcodes.py: CONFIG never restarted
    assert SUPERVISED_PROGRAMS == PROGRAM_NAMES


def test_the_registry_names_every_socket_and_who_the_watchdog_watches() -> None:
    assert PUB_SOCKETS == {
        "bridge": "bridge.pub",
        "features": "features.pub",
        "strategy": "strategy.pub",
        "executor": "executor.pub",
        "watchdog": "watchdog.pub",
        "monitor": "monitor.pub",
    }
    assert REQ_SOCKETS == {"bridge": "bridge.req", "executor": "executor.req", "monitor": "monitor.req"}
    assert PROTECTED_PROGRAMS == {"gateway_sim", "watchdog"}
    assert WATCHED_HEARTBEATS == {"bridge", "features", "strategy", "executor", "monitor"}
