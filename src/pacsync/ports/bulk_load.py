"""A fresh full load done between two databases: the port the table sync uses for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pacsync.domain.records import Key, Row

if TYPE_CHECKING:
    from pacsync.ports import WriteBatch

# the row path's batch for the rows it is given and the key ending the range (None: the last)
Finish = Callable[[list[Row], Key | None], "WriteBatch"]


class BulkLoad(Protocol):
    """Rows the source can map and check exactly as the row path would go from the
    source to the destination without being read here; the others are handed to the
    row path as source rows, one key range (a batch) at a time."""

    def refusal(self, entity: str) -> str | None:
        """Why ``entity`` cannot load this way (None: it can)."""
        ...

    def load(
        self, entity: str, after: Key | None, size: int, finish: Finish
    ) -> tuple[Key | None, int]:
        """Load the next ``size`` source rows after ``after``: copy those that can go
        across, give the others to ``finish`` and write its batch (rows, checkpoint) in
        the same destination transaction.  The key ending the range (None: the source
        ended in it) and the number of rows copied."""
        ...
