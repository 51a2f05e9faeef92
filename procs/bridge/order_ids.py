"""Order ids that never repeat across bridge restarts: the highest id the bridge may have used is kept in a small
file under the data directory, written atomically (and synced to disk) before an id above it is sent.

A restarted Gateway may send a nextValidId below ids already used, and completed orders carry no order id, so the
Gateway's own lists cannot always tell; a reused id gets 103 "Duplicate order id". The file must never go down, and
an id must never be handed out before the file covers it. Ids are reserved a block at a time: one disk sync per
block, not per order (a burst of orders must not wait for the disk), at the price of skipping the rest of a block
at each restart (ids are plentiful: 2^31).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from shared.log import event

FILE_NAME = "bridge-order-ids.json"
BLOCK = 100


def next_order_id(next_valid_id: int, highest_at_gateway: int, highest_persisted: int) -> int:
    """The next id to use: above everything the Gateway announced, listed, or we recorded."""
    return max(next_valid_id, highest_at_gateway + 1, highest_persisted + 1)


class OrderIdStore:
    """`reserve(order_id)` before the id is sent; `at_start` is what this bridge process starts above (the ids of
    earlier processes), `highest` what the file covers now."""

    def __init__(self, path: Path, block: int = BLOCK) -> None:
        self.path = path
        self.block = block
        self.highest = self._read()
        self.at_start = self.highest

    def _read(self) -> int:
        try:
            data = json.loads(self.path.read_text())
            value = int(data["highest_order_id"])
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # a damaged file must not stop trading: the Gateway's lists and the 103 re-place still protect
            event("order_ids_unreadable", "WARNING", path=str(self.path), error=repr(exc))
            return 0
        return max(0, value)

    def reserve(self, order_id: int) -> None:
        """Make sure the file covers `order_id` (raises OSError when it cannot be written: do not send then)."""
        if order_id <= self.highest:
            return
        self._write(order_id + self.block - 1)

    def _write(self, highest: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".order-ids-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"highest_order_id": highest}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)  # a reader sees the old file or the new one, never half of one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash of the machine
        finally:
            os.close(dir_fd)
        self.highest = highest
