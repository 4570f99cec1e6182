"""One dropped file being loaded: its records read in batches, mapped and checked, and
committed with the offset they reach (see :mod:`pacsync.sync.drops`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.drops import FileIdentity, FileRecord, FileReport, fingerprint
from pacsync.domain.mapping import Mapper
from pacsync.domain.records import EntityCounts, Key, Rejected, Row, RowError
from pacsync.domain.validation import Validator
from pacsync.ports import DeadLetters, WriteBatch
from pacsync.sync.batch import BatchProcessor
from pacsync.sync.dead_letter_relay import RelayedDeadLetters

if TYPE_CHECKING:
    from pacsync.sync.drops import DropSync

FILE_COLUMN, LINE_COLUMN = "_file", "_line"  # carried by each row, so dead letters say where
MALFORMED = "malformed"


@dataclass(slots=True)
class Pending:
    """Records read since the last commit."""

    rows: list[Row] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)
    lines: dict[Key, FileRecord] = field(default_factory=dict)
    malformed: list[tuple[FileRecord, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows) + len(self.malformed)


class Recording(RelayedDeadLetters):
    """Dead letters that remember what was parked through them (for the file's report)."""

    def __init__(self, inner: DeadLetters) -> None:
        super().__init__(inner)
        self.parked: list[Rejected] = []

    def park(
        self, job_id: str | None, pipeline: str, entity: str, rejected: Sequence[Rejected]
    ) -> int:
        self.parked.extend(rejected)
        return self.inner.park(job_id, pipeline, entity, rejected)


class FileLoad:
    """The records of one open file, read in batches and committed with their offset."""

    def __init__(
        self,
        sync: DropSync,
        columns: Sequence[str],
        identity: FileIdentity,
        report: FileReport,
        checkpoint: Checkpoint,
    ) -> None:
        self.sync, self.identity, self.report = sync, identity, report
        self.checkpoint = checkpoint
        self.recorder = Recording(sync.dead_letters)
        self.mapper = Mapper(sync.entity, [*columns, LINE_COLUMN, FILE_COLUMN])
        self.processor = BatchProcessor(
            pipeline=sync.spec.name,
            entity=sync.name,
            mapper=self.mapper,
            validator=Validator(sync.entity, self.mapper.fields),
            destination=sync.destination,
            dead_letters=self.recorder,
            job_id=sync.job_id,
        )
        read = set(sync.needed)
        self.fingerprinted = [i for i, c in enumerate(columns) if c in read]
        self.key_columns = [columns.index(k) for k in sync.drop.key]
        self.key_names = list(sync.drop.key)
        self.pending = Pending()
        self.offset = int(checkpoint.extra.get("row", 0))  # records committed
        self.read_to = self.offset  # records read

    def load(self, records: Any, offset: int, seen: set[Key]) -> None:
        target_key = self.processor.target_key
        source_key = self.mapper.source_key
        snapshot = self.sync.drop.snapshot
        size = self.sync.batch_size
        name = self.identity.name
        for record in records:
            if record.index < offset:  # committed before the run stopped: keys only
                if snapshot and record.values is not None:
                    self._known_key(record, seen)
                continue
            if record.values is None:
                self.pending.malformed.append((record, record.problem or "unreadable"))
            else:
                values = record.values
                row = (*values, record.line, name)
                try:
                    self._check_key(values)
                    key = target_key(source_key(row))
                except RowError as error:
                    self.pending.malformed.append((record, error.message))
                else:
                    if key in self.pending.lines:  # a later version of a record in this batch
                        self.flush(record.index)
                    fp = fingerprint([values[i] for i in self.fingerprinted], self.sync.version)
                    self.pending.rows.append((*row, fp))
                    self.pending.keys.append(key)
                    self.pending.lines[key] = record
                    if snapshot:
                        seen.add(key)
            self.report.records += 1
            self.read_to = record.index + 1
            if len(self.pending) >= size:
                self.flush(self.read_to)
        self.flush()

    def _known_key(self, record: FileRecord, seen: set[Key]) -> None:
        assert record.values is not None
        row = (*record.values, record.line, self.identity.name)
        try:
            self._check_key(record.values)
            seen.add(self.processor.target_key(self.mapper.source_key(row)))
        except RowError:
            pass

    def _check_key(self, values: tuple[Any, ...]) -> None:
        for name, i in zip(self.key_names, self.key_columns, strict=True):
            value = values[i]
            if value is None or (isinstance(value, str) and not value.strip()):
                raise RowError(name, MALFORMED, f"key column '{name}' is empty")

    def checkpoint_now(self) -> Checkpoint:
        extra = {"file": self.identity.as_dict(), "row": self.offset}
        return self.checkpoint.advance(extra={**extra, "report": self.report.as_dict()})

    def flush(self, next_offset: int | None = None) -> None:
        """Park and write what is pending; the checkpoint moves to ``next_offset`` (None:
        past the last record read)."""
        pending, self.pending = self.pending, Pending()
        sync, report, counts = self.sync, self.report, self.sync.counts
        if next_offset is None:
            next_offset = self.read_to
        if pending.malformed:
            self._park_malformed(pending.malformed, counts)
        batch = WriteBatch()
        if pending.rows:
            existing = sync.destination.lookup(sync.name, pending.keys)
            before = (counts.inserted, counts.updated, counts.unchanged, counts.filtered)
            self.recorder.parked = []
            batch = self.processor.process(pending.rows, counts, existing, rewrite=sync.rewrite)
            batch.insert_only = False
            after = (counts.inserted, counts.updated, counts.unchanged, counts.filtered)
            report.inserted += after[0] - before[0]
            report.updated += after[1] - before[1]
            report.unchanged += after[2] - before[2]
            report.filtered += after[3] - before[3]
            for rejected in self.recorder.parked:
                found = pending.lines.get(rejected.key)
                line = found.line if found else int(rejected.record.get(LINE_COLUMN) or 0)
                index = found.index if found else -1
                report.reject(line, index, str(rejected.error), rejected.key)
        self.offset = next_offset
        if pending or batch.deletes:
            sync.commit(batch, self.checkpoint_now())

    def _park_malformed(self, items: list[tuple[FileRecord, str]], counts: EntityCounts) -> None:
        name = self.identity.name
        rejected = []
        for record, reason in items:
            payload: dict[str, Any] = {FILE_COLUMN: name, LINE_COLUMN: record.line}
            payload["record"] = record.index + 1
            payload["text"] = record.raw
            error = RowError("record", MALFORMED, reason)
            key = (f"{name}:{record.line or record.index + 1}",)
            rejected.append(Rejected(key, fingerprint([record.raw], name), payload, error))
            self.report.reject(record.line, record.index, reason, None)
            self.report.malformed += 1
        counts.read += len(items)
        counts.dead_lettered += len(items)
        counts.rules_failed[MALFORMED] = counts.rules_failed.get(MALFORMED, 0) + len(items)
        self.sync.dead_letters.park(self.sync.job_id, self.sync.spec.name, self.sync.name, rejected)


# -- as a job's entity step -------------------------------------------------------------------
