"""In-memory implementations of the ports, for unit tests of the use cases.

Tests build these fakes, run a use case against them and assert on their
contents (``destination.tables``, ``dead_letters.items``) rather than on mock
calls.  The fakes keep the contracts of the real connectors that use cases rely
on: sources return rows in key order with a fingerprint last, a destination
write is atomic and stores its checkpoint through its JSON form, and
``insert_only`` writes refuse keys that already exist, as a primary key would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import xxhash

from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.mapping import source_columns
from pacsync.domain.records import EntityCounts, Key, Rejected, Row, key_text, parse_key
from pacsync.domain.spec import EntitySpec, PipelineSpec
from pacsync.ports import Change, ChangeOp, ChangeVersions, WriteBatch

if TYPE_CHECKING:
    from pacsync.ports import DeadLetters, Destination, ProgressSink, Source

Record = dict[str, Any]


def fingerprint(values: Iterable[Any]) -> str:
    """A stable 16-hex-digit hash of a row's values, as a source would compute it."""
    return str(xxhash.xxh64(repr(tuple(values)).encode()).hexdigest())


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _null_first(value: Any) -> tuple[bool, Any]:
    """A sort key ordering None before every other value, as SQL Server does."""
    return (value is not None, value)


# --- source ------------------------------------------------------------------------------------


class MemorySource:
    """A source whose tables are lists of dicts, keyed by the entities' source table names.

    Change tracking is simulated: :meth:`upsert` and :meth:`delete` bump
    ``current_version`` and append ``(version, op, key)`` to
    ``change_log[table]``; tests may also edit these attributes directly.
    """

    def __init__(self, spec: PipelineSpec, tables: dict[str, list[Record]] | None = None) -> None:
        self.spec = spec
        self.tables: dict[str, list[Record]] = {
            name: [dict(r) for r in rows] for name, rows in (tables or {}).items()
        }
        self.bound: Any = None
        self.declared_scales: dict[str, dict[str, int]] = {}
        self.change_log: dict[str, list[tuple[int, ChangeOp, Key]]] = {}
        self.current_version = 0
        self.min_valid_version = 0
        self.fail_check: Exception | None = None
        self.closed = False

    # -- helpers for tests --------------------------------------------------------------------

    def _entity(self, entity: str) -> EntitySpec:
        return self.spec.entities[entity]

    def _key_columns(self, table: str) -> list[str]:
        for spec in self.spec.entities.values():
            if spec.source.table == table:
                return list(spec.source.key)
        raise KeyError(f"no entity of pipeline '{self.spec.name}' reads table '{table}'")

    def _record_key(self, table: str, record: Record) -> Key:
        return tuple(record.get(c) for c in self._key_columns(table))

    def _log(self, table: str, op: ChangeOp, key: Key) -> None:
        self.current_version += 1
        self.change_log.setdefault(table, []).append((self.current_version, op, key))

    def upsert(self, table: str, record: Record) -> None:
        """Insert or replace the row with ``record``'s key, logging an I or U change."""
        rows = self.tables.setdefault(table, [])
        key = self._record_key(table, record)
        for i, existing in enumerate(rows):
            if self._record_key(table, existing) == key:
                rows[i] = dict(record)
                self._log(table, "U", key)
                return
        rows.append(dict(record))
        self._log(table, "I", key)

    def delete(self, table: str, key: Key) -> None:
        """Remove the row with ``key``, logging a D change."""
        rows = self.tables.get(table, [])
        kept = [r for r in rows if self._record_key(table, r) != key]
        if len(kept) == len(rows):
            raise KeyError(f"no row with key {key!r} in table '{table}'")
        self.tables[table] = kept
        self._log(table, "D", key)

    # -- rows ---------------------------------------------------------------------------------

    def _records(self, entity: str) -> list[Record]:
        return self.tables.get(self._entity(entity).source.table, [])

    def _row(self, columns: Sequence[str], record: Record) -> Row:
        values = tuple(record.get(c) for c in columns)
        return (*values, fingerprint(values))

    def _rows(self, entity: str) -> list[tuple[Key, Row]]:
        """Every row of the entity with its source key, ordered by key."""
        spec = self._entity(entity)
        columns = self.columns(entity)
        rows = [
            (tuple(r.get(k) for k in spec.source.key), self._row(columns, r))
            for r in self._records(entity)
        ]
        rows.sort(key=lambda pair: pair[0])
        return rows

    # -- Source -------------------------------------------------------------------------------

    def scales(self, entity: str) -> dict[str, int]:
        return dict(self.declared_scales.get(entity, {}))

    def columns(self, entity: str) -> list[str]:
        return source_columns(self._entity(entity))

    def check(self) -> None:
        if self.fail_check is not None:
            raise self.fail_check

    def count(self, entity: str) -> int:
        return len(self._records(entity))

    def read(
        self, entity: str, *, after_key: Key | None, batch_size: int, up_to: Key | None = None
    ) -> Iterator[list[Row]]:
        rows = [
            row
            for key, row in self._rows(entity)
            if (after_key is None or key > after_key) and (up_to is None or key <= up_to)
        ]
        return _chunks(rows, batch_size)

    def key_range(self, entity: str) -> tuple[Any, Any]:
        keys = [key[0] for key, _ in self._rows(entity)]
        return (min(keys), max(keys)) if keys else (None, None)

    def read_fingerprints(
        self, entity: str, batch_size: int, *, ordered: bool = False
    ) -> Iterator[list[Row]]:
        flat = [(*key, str(row[-1])) for key, row in self._rows(entity)]  # already in key order
        return _chunks(flat, batch_size)

    def read_keys(self, entity: str, keys: Sequence[Key]) -> list[Row]:
        wanted = set(keys)
        return [row for key, row in self._rows(entity) if key in wanted]

    def cursor_bound(self, entity: str) -> Any:
        return self.bound

    def _cursor_column(self, entity: str) -> str:
        cursor = self._entity(entity).cursor
        if cursor is None:
            raise ValueError(f"entity '{entity}' has no cursor column")
        return cursor.column

    def cursor_max(self, entity: str) -> Any:
        column = self._cursor_column(entity)
        values: list[Any] = [r[column] for r in self._records(entity) if r.get(column) is not None]
        return max(values, default=None)

    def read_since(self, entity: str, low: Any, high: Any, batch_size: int) -> Iterator[list[Row]]:
        column = self._cursor_column(entity)
        position = self.columns(entity).index(column)
        picked: list[tuple[Any, Key, Row]] = []
        for key, row in self._rows(entity):
            value = row[position]
            if low is not None and (value is None or value < low):
                continue
            if high is not None and (value is None or value >= high):
                continue
            picked.append((value, key, row))
        picked.sort(key=lambda item: (_null_first(item[0]), item[1]))
        return _chunks([row for _, _, row in picked], batch_size)

    def change_versions(self, entity: str) -> ChangeVersions:
        return ChangeVersions(current=self.current_version, min_valid=self.min_valid_version)

    def read_changes(
        self, entity: str, since: int, batch_size: int
    ) -> tuple[int, Iterator[list[Change]]]:
        """The version now and the latest change of each key changed after ``since``."""
        current = self.current_version
        latest: dict[Key, ChangeOp] = {}
        log = self.change_log.get(self._entity(entity).source.table, [])
        for version, op, key in sorted(log, key=lambda entry: entry[0]):
            if since < version <= current:
                latest[key] = op
        rows = dict(self._rows(entity))
        changes: list[Change] = []
        for key in sorted(latest):
            row = rows.get(key)
            op = latest[key]
            if op == "D" or row is None:
                changes.append(Change("D", key, None))
            else:
                changes.append(Change(op, key, row))
        return current, _chunks(changes, batch_size)

    def orphans(self, entity: str, column: str, parent: str) -> int:
        parents = {key for key, _ in self._rows(parent)}
        values = (r.get(column) for r in self._records(entity))
        return sum(1 for v in values if v is not None and (v,) not in parents)

    def close(self) -> None:
        self.closed = True


# --- destination -------------------------------------------------------------------------------


class WriteRejected(Exception):
    """A write the fake refused, as a real store's constraint would."""


class MemoryDestination:
    """A destination holding mapped rows as dicts by target key.

    ``tables[entity][key]`` is the row with fields named as in the entity's
    ``fields``.  In soft delete mode a deleted row stays with an extra
    ``deleted_at`` item and is left out of every read (``fingerprints``,
    ``lookup``, ``holders``, ``existing``, ``summary``, ``orphans``) but not of
    ``is_empty``: like a real table, it still holds its key.  Writing its key
    again brings it back.

    ``fail_writes`` is consumed one item per :meth:`write` call: an exception is
    raised (nothing applied), ``None`` lets that write through.  ``writes``
    records a copy of every applied write (``written_entities`` the entity of
    each) and ``write_calls`` counts every call, failed ones included.
    """

    def __init__(self, spec: PipelineSpec) -> None:
        self.spec = spec
        self.tables: dict[str, dict[Key, Record]] = {}
        self.hashes: dict[str, dict[Key, str]] = {}
        self.checkpoints: dict[str, Checkpoint] = {}
        self.writes: list[WriteBatch] = []
        self.written_entities: list[str] = []
        self.write_calls = 0
        self.fail_writes: list[Exception | None] = []
        self.fail_check: Exception | None = None
        self.prepared: list[str] = []
        self.closed = False

    # -- helpers for tests --------------------------------------------------------------------

    def live(self, entity: str) -> dict[Key, Record]:
        """The rows of ``entity`` that are not soft-deleted."""
        return {k: r for k, r in self.tables.get(entity, {}).items() if "deleted_at" not in r}

    def _live_hashes(self, entity: str) -> dict[Key, str]:
        rows = self.tables.get(entity, {})
        return {
            k: fp
            for k, fp in self.hashes.get(entity, {}).items()
            if k in rows and "deleted_at" not in rows[k]
        }

    def _key_positions(self, entity: str) -> tuple[list[str], list[int]]:
        spec = self.spec.entities[entity]
        fields = list(spec.fields)
        return fields, [fields.index(f) for f in spec.key_fields]

    # -- Destination --------------------------------------------------------------------------

    def check(self) -> None:
        if self.fail_check is not None:
            raise self.fail_check

    def prepare(self, entity: str) -> None:
        if entity not in self.spec.entities:
            raise KeyError(f"unknown entity '{entity}'")
        self.prepared.append(entity)
        self.tables.setdefault(entity, {})
        self.hashes.setdefault(entity, {})

    def is_empty(self, entity: str) -> bool:
        # Soft-deleted rows count, as in SqlDestination: they still hold their keys, so an
        # insert-only load into this table would collide with them.
        return not self.tables.get(entity)

    def fingerprints(self, entity: str) -> dict[Key, str]:
        return self._live_hashes(entity)

    def fingerprint_batches(self, entity: str, batch_size: int) -> Iterator[list[Row]]:
        flat = [(*key, fp) for key, fp in sorted(self._live_hashes(entity).items())]
        return _chunks(flat, batch_size)

    def lookup(self, entity: str, keys: Sequence[Key]) -> dict[Key, str]:
        stored = self._live_hashes(entity)
        return {k: stored[k] for k in keys if k in stored}

    def holders(self, entity: str, field_name: str, values: Sequence[Any]) -> dict[Any, Key]:
        wanted = set(values)
        found: dict[Any, Key] = {}
        for key in sorted(self.live(entity), key=repr):
            value = self.tables[entity][key].get(field_name)
            if value in wanted and value not in found:
                found[value] = key
        return found

    def existing(self, entity: str, keys: Sequence[Key]) -> set[Key]:
        live = self.live(entity)
        return {k for k in keys if k in live}

    def write(self, entity: str, batch: WriteBatch) -> None:
        """Apply the whole batch or, if anything is wrong, nothing at all."""
        self.write_calls += 1
        if self.fail_writes:
            failure = self.fail_writes.pop(0)
            if failure is not None:
                raise failure
        if entity not in self.tables:
            raise WriteRejected(f"table of entity '{entity}' was not prepared")
        if len(batch.rows) != len(batch.fingerprints):
            raise WriteRejected(
                f"{len(batch.rows)} rows but {len(batch.fingerprints)} fingerprints"
            )
        fields, positions = self._key_positions(entity)
        table = self.tables[entity]
        upserts: list[tuple[Key, Record, str]] = []
        seen: set[Key] = set()
        for row, fp in zip(batch.rows, batch.fingerprints, strict=True):
            if len(row) != len(fields):
                raise WriteRejected(f"row has {len(row)} values, entity has {len(fields)} fields")
            key = tuple(row[i] for i in positions)
            if batch.insert_only and (key in table or key in seen):
                raise WriteRejected(f"insert-only write of existing key {key!r} in '{entity}'")
            seen.add(key)
            upserts.append((key, dict(zip(fields, row, strict=True)), fp))
        checkpoint = (
            None
            if batch.checkpoint is None
            else Checkpoint.from_json(
                entity=batch.checkpoint.entity,
                pipeline=batch.checkpoint.pipeline,
                text=batch.checkpoint.to_json(),
            )
        )
        # Everything is checked: apply.
        hashes = self.hashes[entity]
        for key, record, fp in upserts:
            table[key] = record
            hashes[key] = fp
        for key in batch.deletes:
            if self.spec.destination.delete_mode == "hard":
                table.pop(key, None)
                hashes.pop(key, None)
            elif key in table and "deleted_at" not in table[key]:
                table[key] = {**table[key], "deleted_at": dt.datetime.now(dt.UTC)}
        if checkpoint is not None:
            self.checkpoints[checkpoint.entity] = checkpoint  # by its own name, as in SQL
        self.writes.append(_copy(batch))
        self.written_entities.append(entity)

    def forget_checkpoints(self, names: Sequence[str]) -> None:
        for name in names:
            self.checkpoints.pop(name, None)

    def load_checkpoint(self, entity: str) -> Checkpoint | None:
        return self.checkpoints.get(entity)

    def orphans(self, entity: str, field_name: str, parent: str) -> int:
        parents = set(self.live(parent))
        values = (r.get(field_name) for r in self.live(entity).values())
        return sum(1 for v in values if v is not None and (v,) not in parents)

    def close(self) -> None:
        self.closed = True


def _copy(batch: WriteBatch) -> WriteBatch:
    return WriteBatch(
        rows=list(batch.rows),
        fingerprints=list(batch.fingerprints),
        deletes=list(batch.deletes),
        checkpoint=batch.checkpoint,
        insert_only=batch.insert_only,
    )


# --- dead letters and progress -----------------------------------------------------------------


LetterStatus = Literal["open", "superseded", "resolved"]


@dataclass(slots=True)
class DeadLetter:
    """One parked record, as the dead-letter store keeps it."""

    job_id: str | None
    pipeline: str
    entity: str
    key: Key
    fingerprint: str
    record: Record
    field: str
    rule: str
    message: str
    status: LetterStatus = "open"
    reason: str | None = None


class MemoryDeadLetters:
    """Dead letters in a list, with the rules of the store's ``DeadLetterStore``.

    A record version, (pipeline, entity, key, fingerprint), is parked once
    whatever its status; parking a new version of a key supersedes the key's
    open letter.  Keys are compared through their JSON text, and
    :meth:`open_keys` returns them as they read back from JSON.
    """

    def __init__(self) -> None:
        self.items: list[DeadLetter] = []

    def open(self, entity: str | None = None) -> list[DeadLetter]:
        """The open letters (of one entity)."""
        return [
            i for i in self.items if i.status == "open" and (entity is None or i.entity == entity)
        ]

    def park(
        self, job_id: str | None, pipeline: str, entity: str, rejected: Sequence[Rejected]
    ) -> int:
        known = {
            (key_text(i.key), i.fingerprint)
            for i in self.items
            if (i.pipeline, i.entity) == (pipeline, entity)
        }
        fresh: list[DeadLetter] = []
        for item in rejected:
            identity = (key_text(item.key), item.fingerprint)
            if identity in known:
                continue
            known.add(identity)
            fresh.append(
                DeadLetter(
                    job_id=job_id,
                    pipeline=pipeline,
                    entity=entity,
                    key=item.key,
                    fingerprint=item.fingerprint,
                    record=dict(item.record),
                    field=item.error.field,
                    rule=item.error.rule,
                    message=item.error.message,
                )
            )
        stale = {key_text(d.key) for d in fresh}
        for letter in self.items:
            if (
                (letter.pipeline, letter.entity) == (pipeline, entity)
                and letter.status == "open"
                and key_text(letter.key) in stale
            ):
                letter.status = "superseded"
        self.items.extend(fresh)
        return len(fresh)

    def open_keys(self, pipeline: str, entity: str) -> set[Key]:
        return {
            parse_key(key_text(i.key))
            for i in self.items
            if (i.pipeline, i.entity, i.status) == (pipeline, entity, "open")
        }

    def resolve(self, pipeline: str, entity: str, keys: Sequence[Key], reason: str) -> int:
        texts = {key_text(k) for k in keys}
        changed = 0
        for letter in self.items:
            if (letter.pipeline, letter.entity, letter.status) == (
                pipeline,
                entity,
                "open",
            ) and key_text(letter.key) in texts:
                letter.status = "resolved"
                letter.reason = reason
                changed += 1
        return changed


ProgressKind = Literal["entity_started", "batch_done", "entity_done"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One call to a progress sink; ``counts`` is a snapshot taken at the call."""

    kind: ProgressKind
    entity: str
    total: int | None = None
    mode: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)


class RecordingProgress:
    """A progress sink that remembers every call in order."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def kinds(self) -> list[ProgressKind]:
        return [e.kind for e in self.events]

    def entity_started(self, entity: str, total: int | None, mode: str) -> None:
        self.events.append(ProgressEvent("entity_started", entity, total=total, mode=mode))

    def batch_done(self, entity: str, counts: EntityCounts) -> None:
        self.events.append(ProgressEvent("batch_done", entity, counts=counts.as_dict()))

    def entity_done(self, entity: str, counts: EntityCounts) -> None:
        self.events.append(ProgressEvent("entity_done", entity, counts=counts.as_dict()))


if TYPE_CHECKING:
    # mypy proves the fakes match their ports.

    def _conforms(
        spec: PipelineSpec,
    ) -> tuple[Source, Destination, DeadLetters, ProgressSink]:
        return (
            MemorySource(spec),
            MemoryDestination(spec),
            MemoryDeadLetters(),
            RecordingProgress(),
        )
