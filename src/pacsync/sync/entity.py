"""Synchronising one entity: full loads and the three incremental strategies.

The strategy logic is the same for every database; a source only supplies the
queries.  Every write carries the checkpoint it completes, so a crash re-sends
at most the batch in flight and the upsert makes that harmless.

- full: every row ordered by key.  Into an empty target rows are only inserted
  (the fast path); otherwise changed rows are upserted (every row, when the
  mapping changed) and, at the end, target keys missing from the source are
  deleted.  A full run resumes after the last committed key.
- hash_diff: keys and fingerprints of the whole source compared with the
  fingerprints stored beside the target rows; only new and changed rows are
  read in full; keys gone from the source are deleted.
- cursor: rows whose cursor is at or above the saved value (less an overlap
  window, or bounded by the source's in-flight limit) are re-read and
  de-duplicated by fingerprint; deletes are found by a periodic key comparison.
- change_tracking: the source's change feed since the saved version; a saved
  version older than the oldest the source still answers forces a full run.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from itertools import chain
from typing import Any, Literal

from pacsync.domain.checkpoint import Checkpoint, cursor_below, cursor_max
from pacsync.domain.mapping import Mapper, mapping_version
from pacsync.domain.records import EntityCounts, Key, Row
from pacsync.domain.spec import EntitySpec, PipelineSpec
from pacsync.domain.validation import Validator
from pacsync.ports import (
    BulkLoad,
    DeadLetters,
    Destination,
    PartitionRunner,
    ProgressSink,
    Source,
    WriteBatch,
)
from pacsync.sync import bulk_full, partition
from pacsync.sync.batch import BatchProcessor
from pacsync.sync.committing import CommitsBatches, jsonish

Mode = Literal["full", "incremental"]


class EntitySync(CommitsBatches):
    """One run of one entity of a pipeline."""

    def __init__(
        self,
        spec: PipelineSpec,
        entity: str,
        *,
        source: Source,
        destination: Destination,
        dead_letters: DeadLetters,
        progress: ProgressSink,
        job_id: str | None = None,
        deadline: float | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        runner: PartitionRunner | None = None,
        bulk: BulkLoad | None = None,
    ) -> None:
        self.spec = spec
        self.runner, self.bulk = runner, bulk
        self.job_id = job_id
        self.name = entity
        self.entity: EntitySpec = spec.entities[entity]
        self.source = source
        self.destination = destination
        self.progress = progress
        self.deadline = deadline
        self.should_stop = should_stop
        self.batch_size = spec.batch_size_for(entity)
        self.version = mapping_version(self.entity)
        self.mapper = Mapper(self.entity, source.columns(entity), source.scales(entity))
        self.processor = BatchProcessor(
            pipeline=spec.name,
            entity=entity,
            mapper=self.mapper,
            validator=Validator(self.entity, self.mapper.fields),
            destination=destination,
            dead_letters=dead_letters,
            job_id=job_id,
        )
        self.dead_letters = dead_letters
        self.parked = dead_letters.open_keys(spec.name, entity)
        self.counts = EntityCounts()
        self.mode_run = "full"

    # -- entry point ----------------------------------------------------------------------------

    def run(self, mode: Mode) -> EntityCounts:
        self.destination.prepare(self.name)
        saved = self.destination.load_checkpoint(self.name)
        stale = saved is None or saved.mapping_version != self.version
        flagged = self.dead_letters.retry_keys(self.spec.name, self.name)
        if saved is not None and saved.phase == "full" and not stale:
            self._full(saved)
        elif mode == "full" or saved is None or stale:
            self._full(self._start_full(rewrite=saved is not None and stale))
        elif self.entity.strategy == "hash_diff":  # re-reads every record missing in the target
            self._hash_diff(saved)
        elif self.entity.strategy == "cursor":
            self._retry_flagged(saved, flagged)
            self._cursor(saved)
        else:
            self._retry_flagged(saved, flagged)
            self._change_tracking(saved)
        still = flagged & self.parked
        if still:  # failed again: open once more, one attempt more
            self.dead_letters.retried(self.spec.name, self.name, list(still))
        self.progress.entity_done(self.name, self.counts)
        return self.counts

    def _retry_flagged(self, checkpoint: Checkpoint, keys: set[Key]) -> None:
        """Read again the parked records an operator asked to retry (their key fields are
        copied unchanged from the source, so a parked key is also the source key)."""
        wanted = sorted(keys)
        for start in range(0, len(wanted), self.batch_size):
            chunk = wanted[start : start + self.batch_size]
            rows = self.source.read_keys(self.name, chunk)
            existing = self.destination.lookup(self.name, chunk)
            batch = self.processor.process(rows, self.counts, existing)
            batch.insert_only = False
            self.commit(batch, checkpoint)

    # -- full -------------------------------------------------------------------------------

    def _start_full(self, *, rewrite: bool) -> Checkpoint:
        fresh = self.destination.is_empty(self.name)
        cursor = change_version = None
        if self.entity.strategy == "cursor":
            bound = self.source.cursor_bound(self.name)
            cursor = bound if bound is not None else self.source.cursor_max(self.name)
        elif self.entity.strategy == "change_tracking":
            change_version = self.source.change_versions(self.name).current
        return Checkpoint(
            pipeline=self.spec.name,
            entity=self.name,
            mapping_version=self.version,
            phase="full",
            fresh=fresh,
            cursor=cursor,
            change_version=change_version,
            extra={"rewrite": rewrite and not fresh},
        )

    def _parallel(self, checkpoint: Checkpoint) -> bool:
        """Whether this full load may be split by key range across processes."""
        return (
            self.runner is not None
            and self.entity.parallel > 1
            and checkpoint.fresh
            and len(self.entity.key_fields) == 1
            and self.entity.integer_key
            and not self.processor.validator.unique
        )

    def _full_parallel(self, checkpoint: Checkpoint) -> None:
        runner = self.runner or partition.InProcessRunner(
            self.source, self.destination, self.dead_letters
        )
        self.mode_run = "full"
        stored = checkpoint.extra.get("partitions")
        if stored is None:
            low, high = self.source.key_range(self.name)
            if low is None:
                self._finish(checkpoint, [])
                return
            plan = partition.plan(self.name, int(low), int(high), self.entity.parallel)
            checkpoint = checkpoint.advance(
                extra={**checkpoint.extra, "partitions": partition.to_extra(plan)}
            )
            self.commit(WriteBatch(), checkpoint)  # the plan first: a crash resumes each range
            stored = checkpoint.extra["partitions"]
        parts = partition.from_extra(stored)
        self.progress.entity_started(self.name, self.source.count(self.name), "full")
        progress: dict[int, EntityCounts] = {}

        def report(index: int, counts: EntityCounts) -> None:
            progress[index] = counts
            self.counts = EntityCounts.total(progress.values())
            self.progress.batch_done(self.name, self.counts)

        results = runner.run(self.spec, self.name, parts, self.job_id, report)
        self.counts = EntityCounts.total(results)
        self._finish(checkpoint, [])
        self.destination.forget_checkpoints([p.checkpoint_name for p in parts])

    def _full(self, checkpoint: Checkpoint) -> None:
        if self._parallel(checkpoint) or "partitions" in checkpoint.extra:
            self._full_parallel(checkpoint)
            return
        self.mode_run = "full"
        self.progress.entity_started(self.name, self.source.count(self.name), "full")
        existing = None if checkpoint.fresh else self.destination.fingerprints(self.name)
        rewrite = bool(checkpoint.extra.get("rewrite"))
        if self.bulk is not None and bulk_full.accepts(self, self.bulk, checkpoint):
            checkpoint = bulk_full.load(self, self.bulk, checkpoint)
        else:
            for rows in self.source.read(
                self.name, after_key=checkpoint.after_key, batch_size=self.batch_size
            ):
                batch = self.processor.process(rows, self.counts, existing, rewrite=rewrite)
                checkpoint = checkpoint.advance(after_key=self.mapper.source_key(rows[-1]))
                self.commit(batch, checkpoint)
        deletes: list[Key] = []
        if not checkpoint.fresh and self.entity.deletes == "detect":
            deletes = self._missing_keys(existing or {})
        self._finish(checkpoint, deletes)

    # -- incremental ----------------------------------------------------------------------------

    def _hash_diff(self, checkpoint: Checkpoint) -> None:
        if self._ordered_keys():
            self._hash_diff_merge(checkpoint)
            return
        self.mode_run = "hash_diff"
        existing = self.destination.fingerprints(self.name)
        self.progress.entity_started(self.name, len(existing) or None, "hash_diff")
        remaining = dict(existing)
        target_key = self.processor.target_key
        pending: list[Key] = []
        unseen = set(self.parked)
        for rows in self.source.read_fingerprints(self.name, self.batch_size):
            for row in rows:
                source_key = row[:-1]
                key = target_key(source_key)
                old = remaining.pop(key, None)
                if old != row[-1]:
                    pending.append(source_key)
                    if unseen:
                        unseen.discard(jsonish(key))
            self.counts.read += len(rows)
            self.counts.unchanged += len(rows)
            if len(pending) >= self.batch_size:
                self._fetch_and_write(pending, existing, checkpoint)
                pending = []
            else:
                self.progress.batch_done(self.name, self.counts)
        if pending:
            self._fetch_and_write(pending, existing, checkpoint)
        deletes = list(remaining) if self.entity.deletes == "detect" else []
        if unseen:  # parked records since deleted from the source
            self.dead_letters.resolve(self.spec.name, self.name, list(unseen), "deleted")
            self.parked.difference_update(unseen)
        self._finish(checkpoint, deletes)

    def _ordered_keys(self) -> bool:
        return self.entity.integer_key

    def _hash_diff_merge(self, checkpoint: Checkpoint) -> None:
        """hash_diff as a merge of two key-ordered streams read at the same time: memory
        stays bounded by the batch size, and both databases work in parallel."""
        self.mode_run = "hash_diff"
        self.progress.entity_started(self.name, None, "hash_diff")
        size = self.batch_size
        target = chain.from_iterable(self.destination.fingerprint_batches(self.name, size))
        source = self.source.read_fingerprints(self.name, size, ordered=True)
        # integer keys compare as they are; a one-column key as its scalar
        key_of: Callable[[Row], Any] = (
            operator.itemgetter(0) if len(self.entity.source.key) == 1 else _key_part
        )
        as_key: Callable[[Any], Key] = (
            (lambda k: (k,)) if len(self.entity.source.key) == 1 else (lambda k: k)
        )
        pending: dict[Key, str | None] = {}  # source keys to read in full -> stored fingerprint
        deletes: list[Key] = []
        unseen = set(self.parked)
        current = next(target, None)
        stored = key_of(current) if current is not None else None
        for rows in source:
            for row in rows:
                key = key_of(row)
                while current is not None and stored < key:
                    deletes.append(as_key(stored))
                    current = next(target, None)
                    stored = key_of(current) if current is not None else None
                if current is not None and stored == key:
                    if current[-1] != row[-1]:
                        pending[as_key(key)] = current[-1]
                    current = next(target, None)
                    stored = key_of(current) if current is not None else None
                else:
                    pending[as_key(key)] = None
                    if unseen:
                        unseen.discard(jsonish(as_key(key)))
            self.counts.read += len(rows)
            self.counts.unchanged += len(rows)
            if len(pending) >= size:
                self._write_pending(pending, checkpoint)
                pending = {}
            else:
                self.progress.batch_done(self.name, self.counts)
        while current is not None:
            deletes.append(as_key(key_of(current)))
            current = next(target, None)
        if pending:
            self._write_pending(pending, checkpoint)
        if unseen:  # parked records since deleted from the source
            self.dead_letters.resolve(self.spec.name, self.name, list(unseen), "deleted")
            self.parked.difference_update(unseen)
        self._finish(checkpoint, deletes if self.entity.deletes == "detect" else [])

    def _write_pending(self, pending: dict[Key, str | None], checkpoint: Checkpoint) -> None:
        convert = self.processor.target_key
        stored = {convert(k): fp for k, fp in pending.items() if fp is not None}
        self._fetch_and_write(list(pending), stored, checkpoint)

    def _fetch_and_write(
        self, keys: list[Key], existing: dict[Key, str], checkpoint: Checkpoint
    ) -> None:
        self.counts.unchanged -= len(keys)
        rows = self.source.read_keys(self.name, keys)
        self.counts.read -= len(rows)  # already counted by the fingerprint pass
        batch = self.processor.process(rows, self.counts, existing)
        batch.insert_only = False
        self.commit(batch, checkpoint)

    def _cursor(self, checkpoint: Checkpoint) -> None:
        assert self.entity.cursor is not None
        self.mode_run = "cursor"
        cursor = self.entity.cursor
        position = self.mapper.columns.index(cursor.column)
        bound = self.source.cursor_bound(self.name)
        low = cursor_below(checkpoint.cursor, cursor.overlap)
        self.progress.entity_started(self.name, None, "cursor")
        high = checkpoint.cursor
        for rows in self.source.read_since(self.name, low, bound, self.batch_size):
            keys = [self.processor.target_key(self.mapper.source_key(r)) for r in rows]
            existing = self.destination.lookup(self.name, keys)
            batch = self.processor.process(rows, self.counts, existing)
            batch.insert_only = False
            high = cursor_max(high, (r[position] for r in rows))
            self.commit(batch, checkpoint.advance(cursor=high))
        checkpoint = checkpoint.advance(cursor=bound if bound is not None else high)
        runs = checkpoint.completed_runs + 1
        deletes: list[Key] = []
        if cursor.key_check_every and runs % cursor.key_check_every == 0:
            deletes = self._missing_keys(self.destination.fingerprints(self.name))
        self._finish(checkpoint, deletes)

    def _change_tracking(self, checkpoint: Checkpoint) -> None:
        versions = self.source.change_versions(self.name)
        since = checkpoint.change_version
        if since is None or since < versions.min_valid:
            self._full(self._start_full(rewrite=False))
            return
        self.mode_run = "change_tracking"
        self.progress.entity_started(self.name, None, "change_tracking")
        current, feed = self.source.read_changes(self.name, since, self.batch_size)
        target_key = self.processor.target_key
        for changes in feed:
            rows = [c.row for c in changes if c.op != "D" and c.row is not None]
            gone = [target_key(c.key) for c in changes if c.op == "D" or c.row is None]
            gone = list(self.destination.lookup(self.name, gone)) if gone else []
            keys = [target_key(self.mapper.source_key(r)) for r in rows]
            existing = self.destination.lookup(self.name, keys)
            batch = self.processor.process(rows, self.counts, existing)
            batch.insert_only = False
            batch.deletes.extend(gone)
            self.commit(batch, checkpoint)
        self._finish(checkpoint.advance(change_version=current), [])

    # -- shared -------------------------------------------------------------------------------

    def _missing_keys(self, target: dict[Key, str]) -> list[Key]:
        """Target keys that no longer exist in the source (a key-only pass)."""
        remaining = set(target)
        convert = self.processor.target_key
        for rows in self.source.read_fingerprints(self.name, self.batch_size):
            remaining.difference_update(convert(row[:-1]) for row in rows)
            self.check_limits()
        return list(remaining)

    def _finish(self, checkpoint: Checkpoint, deletes: list[Key]) -> None:
        final = checkpoint.advance(
            phase="idle",
            after_key=None,
            fresh=False,
            completed_runs=checkpoint.completed_runs + 1,
            extra={},
        )
        for start in range(0, len(deletes), self.batch_size):
            chunk = deletes[start : start + self.batch_size]
            last = start + self.batch_size >= len(deletes)
            self.commit(WriteBatch(deletes=chunk), final if last else checkpoint, closing=last)
        if not deletes:
            self.commit(WriteBatch(), final, closing=True)


def _key_part(row: Row) -> Key:
    return tuple(row[:-1])
