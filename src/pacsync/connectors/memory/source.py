"""An in-memory source: tables of dicts, a change log, rows in key order with a fingerprint."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import xxhash

from pacsync.domain.mapping import source_columns
from pacsync.domain.records import Key, Row
from pacsync.domain.spec import EntitySpec, PipelineSpec
from pacsync.ports import Change, ChangeOp, ChangeVersions

Record = dict[str, Any]


def fingerprint(values: Iterable[Any]) -> str:
    """A stable 16-hex-digit hash of a row's values, as a source would compute it."""
    return str(xxhash.xxh64(repr(tuple(values)).encode()).hexdigest())


def chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
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
        return chunks(rows, batch_size)

    def key_range(self, entity: str) -> tuple[Any, Any]:
        keys = [key[0] for key, _ in self._rows(entity)]
        return (min(keys), max(keys)) if keys else (None, None)

    def read_fingerprints(
        self, entity: str, batch_size: int, *, ordered: bool = False
    ) -> Iterator[list[Row]]:
        flat = [(*key, str(row[-1])) for key, row in self._rows(entity)]  # already in key order
        return chunks(flat, batch_size)

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
        return chunks([row for _, _, row in picked], batch_size)

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
        return current, chunks(changes, batch_size)

    def orphans(self, entity: str, column: str, parent: str) -> int:
        parents = {key for key, _ in self._rows(parent)}
        values = (r.get(column) for r in self._records(entity))
        return sum(1 for v in values if v is not None and (v,) not in parents)

    def close(self) -> None:
        self.closed = True


# --- destination -------------------------------------------------------------------------------
