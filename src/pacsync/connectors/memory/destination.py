"""An in-memory destination: atomic writes, checkpoints through JSON, a failure switch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pacsync.connectors.memory.source import chunks
from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.records import Key, Row
from pacsync.domain.spec import PipelineSpec
from pacsync.ports import WriteBatch

Record = dict[str, Any]


class WriteRejected(Exception):
    """A write the fake refused, as a real store's constraint would."""


class MemoryDestination:
    """A destination holding mapped rows as dicts by target key.

    ``tables[entity][key]`` is the row with fields named as in the entity's
    ``fields``.  In soft delete mode a deleted row stays with an extra
    ``deleted_at`` item and is left out of every read (``fingerprints``,
    ``lookup``, ``holders``, ``existing``, ``orphans``) but not of
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
        return chunks(flat, batch_size)

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
