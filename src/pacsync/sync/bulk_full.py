"""A fresh full load done by the databases, one key range at a time.

Used by :class:`pacsync.sync.entity.EntitySync` when its
:class:`pacsync.ports.BulkLoad` accepts the entity: the rows the source maps and
checks exactly as the row path would are copied across there; the rest of each
range is read back and mapped, checked and dead-lettered here, and written
with the copied rows and the checkpoint in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.records import Key, Row
from pacsync.ports import BulkLoad, WriteBatch
from pacsync.sync.committing import jsonish

if TYPE_CHECKING:
    from pacsync.sync.entity import EntitySync


def accepts(sync: EntitySync, bulk: BulkLoad | None, checkpoint: Checkpoint) -> bool:
    """Whether this full load can go through ``bulk``: an empty target, one process, and
    a mapping the source can compute exactly."""
    return (
        bulk is not None
        and checkpoint.fresh
        and "partitions" not in checkpoint.extra
        and bulk.refusal(sync.name) is None
    )


RANGE_BATCHES = 20  # a range holds this many batches of rows...
RANGE_CAP = 100_000  # ...up to this many: each range costs a few round trips and a commit


def range_rows(batch_size: int) -> int:
    """Rows per key range: the row path's share of a range is held in memory at once."""
    return max(batch_size, min(RANGE_CAP, RANGE_BATCHES * batch_size))


def load(sync: EntitySync, bulk: BulkLoad, checkpoint: Checkpoint) -> Checkpoint:
    """Every key range after the checkpoint's; the last checkpoint written."""
    state = _Ranges(sync, checkpoint)
    after = checkpoint.after_key
    size = range_rows(sync.batch_size)
    while True:
        before = after
        after, copied = bulk.load(sync.name, before, size, state.finish)
        sync.counts.read += copied
        sync.counts.inserted += copied
        _settle_copied(sync, before, after, state.handed)
        sync.committed(state.batch)
        if after is None:
            return state.checkpoint


def _settle_copied(sync: EntitySync, after: Key | None, upto: Key | None, handed: set[Key]) -> None:
    """Open dead letters of the range's records the row path was not given: copied, or
    gone from the source, so settled (those it was given it settles or parks itself)."""
    if not sync.parked:
        return
    low = None if after is None else jsonish(after)
    high = None if upto is None else jsonish(upto)
    settled = []
    for key in sync.parked:
        try:
            inside = (low is None or key > low) and (high is None or key <= high)
        except TypeError:  # a key of another type than the source's: not in this range
            inside = False
        if inside and key not in handed:
            settled.append(key)
    if settled:
        sync.dead_letters.resolve(sync.spec.name, sync.name, settled, "synced or deleted")
        sync.parked.difference_update(settled)


class _Ranges:
    """The row path's part of each range: its rows' batch and the checkpoint it carries."""

    def __init__(self, sync: EntitySync, checkpoint: Checkpoint) -> None:
        self.sync, self.checkpoint = sync, checkpoint
        self.batch = WriteBatch()
        self.handed: set[Key] = set()  # keys of the rows given to the row path (as parked)

    def finish(self, rows: list[Row], upto: Key | None) -> WriteBatch:
        if self.sync.parked:  # only open dead letters are looked up in it
            key, target_key = self.sync.mapper.source_key, self.sync.processor.target_key
            self.handed = {jsonish(target_key(key(row))) for row in rows}
        self.batch = self.sync.processor.process(rows, self.sync.counts, None)  # parks failures
        if upto is not None:
            self.checkpoint = self.checkpoint.advance(after_key=upto)
        self.batch.checkpoint = self.checkpoint
        return self.batch
