"""How a table sync and a file drop commit a batch: its rows, deletes and checkpoint in
one transaction, the dead letters it settles resolved, progress told, then the job's
limits checked (its deadline, a stop asked for).

:class:`CommitsBatches` is shared by :class:`pacsync.sync.entity.EntitySync` and
:class:`pacsync.sync.drops.DropSync`; it reads the attributes it declares from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.records import EntityCounts, Key, key_text, parse_key
from pacsync.domain.spec import EntitySpec, PipelineSpec
from pacsync.errors import JobTimeout
from pacsync.ports import DeadLetters, Destination, ProgressSink, WriteBatch


class CommitsBatches:
    spec: PipelineSpec
    name: str
    entity: EntitySpec
    destination: Destination
    dead_letters: DeadLetters
    progress: ProgressSink
    counts: EntityCounts
    parked: set[Key]  # keys of this entity's open dead letters (as they read back: JSON)
    deadline: float | None  # time.monotonic() at which the job times out
    should_stop: Callable[[], bool]

    def commit(self, batch: WriteBatch, checkpoint: Checkpoint, *, closing: bool = False) -> None:
        """Write the batch with its checkpoint in one transaction (``closing``: the
        run's last; the limits are not checked after it)."""
        batch.checkpoint = checkpoint
        self.destination.write(self.name, batch)
        self.committed(batch, closing=closing)

    def committed(self, batch: WriteBatch, *, closing: bool = False) -> None:
        """What follows a batch's write: its dead letters settled, progress told and,
        unless ``closing``, the limits checked."""
        self.counts.deleted += len(batch.deletes)
        if self.parked and (batch.rows or batch.deletes):
            self._resolve_parked(batch)
        self.counts.batches += 1
        self.progress.batch_done(self.name, self.counts)
        if not closing:
            self.check_limits()

    def check_limits(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise JobTimeout(
                f"entity '{self.name}' stopped at the job timeout after "
                f"{self.counts.batches} committed batches"
            )
        if self.should_stop():
            raise KeyboardInterrupt

    def _resolve_parked(self, batch: WriteBatch) -> None:
        """Dead letters of records this batch wrote or deleted are settled."""
        fields = list(self.entity.fields)
        positions = [fields.index(f) for f in self.entity.key_fields]
        done = {tuple(row[i] for i in positions) for row in batch.rows}
        done.update(batch.deletes)
        settled = [k for k in done if jsonish(k) in self.parked]
        if settled:
            self.dead_letters.resolve(self.spec.name, self.name, settled, "synced or deleted")
            self.parked.difference_update(jsonish(k) for k in settled)


def jsonish(key: Key) -> Key:
    """A key as it reads back from a dead letter (JSON scalars)."""
    return parse_key(key_text(key))
