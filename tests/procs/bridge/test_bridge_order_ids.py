"""The order-id file: an id is covered on disk before it is sent, a restarted bridge starts above it, and the
next id is above everything the Gateway announced, listed, or we recorded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from procs.bridge.order_ids import OrderIdStore, next_order_id


def test_a_fresh_data_directory_starts_at_zero(tmp_path: Path) -> None:
    assert OrderIdStore(tmp_path / "ids.json").highest == 0


def test_an_id_is_on_disk_before_it_is_used_and_a_restart_starts_above_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ids.json"  # the data directory may not exist yet
    store = OrderIdStore(path, block=10)
    store.reserve(7)
    on_disk = json.loads(path.read_text())["highest_order_id"]
    assert on_disk >= 7
    for order_id in range(8, 40):  # a burst: each id covered, the disk written once per block
        store.reserve(order_id)
        assert json.loads(path.read_text())["highest_order_id"] >= order_id
    restarted = OrderIdStore(path, block=10)
    assert restarted.highest >= 39
    assert next_order_id(1, 0, restarted.highest) > 39  # a rolled-back nextValidId of 1 changes nothing


def test_a_process_starts_above_what_the_file_said_when_it_started(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    OrderIdStore(path, block=10).reserve(42)
    store = OrderIdStore(path, block=10)
    store.reserve(store.at_start + 1)  # reserving ahead for this process does not move where it starts
    assert store.at_start == 51 and store.highest == 61


def test_the_file_never_goes_down(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    store = OrderIdStore(path, block=1)
    store.reserve(500)
    store.reserve(3)
    assert json.loads(path.read_text())["highest_order_id"] == 500


def test_nothing_but_the_file_is_left_in_the_directory(tmp_path: Path) -> None:
    OrderIdStore(tmp_path / "ids.json", block=1).reserve(5)
    assert os.listdir(tmp_path) == ["ids.json"]  # the temporary file was renamed over it


def test_an_id_that_cannot_be_recorded_raises_and_is_not_covered(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the data directory should be")
    store = OrderIdStore(blocked / "ids.json")
    with pytest.raises(OSError):
        store.reserve(1)
    assert store.highest == 0


def test_a_damaged_file_is_reported_and_read_as_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    path.write_text("{not json")
    assert OrderIdStore(path).highest == 0


@pytest.mark.parametrize(
    ("next_valid", "at_gateway", "persisted", "expected"),
    [(1, 0, 0, 1), (1, 40, 0, 41), (1, 40, 120, 121), (500, 40, 120, 500)],
)
def test_the_next_id_is_above_every_source(
    next_valid: int, at_gateway: int, persisted: int, expected: int
) -> None:
    assert next_order_id(next_valid, at_gateway, persisted) == expected
