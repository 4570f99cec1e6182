"""A SQL database as a pipeline destination.

Target rows carry their record state beside them: the source fingerprint and
the sync time (and ``deleted_at`` for soft deletes).  Checkpoints live in the
same database, so rows, record state and checkpoint commit together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)

from pacsync.connectors.sql import schema
from pacsync.connectors.sql.dialects import server_side_cursor
from pacsync.connectors.sql.errors import translated
from pacsync.connectors.sql.source import compile_for_driver, prefetched
from pacsync.connectors.sql.writers import key_filter, write_rows
from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.records import Key, Row
from pacsync.domain.spec import PipelineSpec
from pacsync.ports import WriteBatch

_LOOKUP_CHUNK = 5000


class SqlDestination:
    """A :class:`pacsync.ports.Destination` writing into one SQLAlchemy engine."""

    def __init__(self, spec: PipelineSpec, engine: Engine, *, connection_name: str) -> None:
        self.spec = spec
        self.engine = engine
        self.where = f"destination '{connection_name}'"
        self.soft = spec.destination.delete_mode == "soft"
        metadata = MetaData()
        self.tables: dict[str, Table] = {
            name: schema.target_table(spec, entity, metadata)
            for name, entity in spec.entities.items()
        }
        self.keys = {name: e.key_fields for name, e in spec.entities.items()}
        self.checkpoints = schema.checkpoints_table(metadata, spec.destination.db_schema)
        self._prepared: set[str] = set()

    # -- Destination port -----------------------------------------------------------------------

    def check(self) -> None:
        with translated(self.where), self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def prepare(self, entity: str) -> None:
        if entity in self._prepared:
            return
        if not self._prepared:
            schema.ensure(self.engine, self.checkpoints, self.where)
        schema.ensure(self.engine, self.tables[entity], self.where)
        self._prepared.add(entity)

    def is_empty(self, entity: str) -> bool:
        table = self.tables[entity]
        with translated(self.where), self.engine.connect() as conn:
            return not conn.execute(select(exists().select_from(table))).scalar_one()

    def fingerprints(self, entity: str) -> dict[Key, str]:
        table, keys = self.tables[entity], self.keys[entity]
        stmt = select(*(table.c[k] for k in keys), table.c[schema.FINGERPRINT])
        stmt = self._live(stmt, table)
        width = len(keys)
        found: dict[Key, str] = {}
        for part in self._stream(stmt):
            if width == 1:
                found.update(((r[0],), r[1]) for r in part)
            else:
                found.update((tuple(r[:width]), r[width]) for r in part)
        return found

    def fingerprint_batches(self, entity: str, batch_size: int) -> Iterator[list[Row]]:
        table, keys = self.tables[entity], self.keys[entity]
        columns = [table.c[k] for k in keys]
        stmt = self._live(select(*columns, table.c[schema.FINGERPRINT]), table).order_by(*columns)
        yield from prefetched(self._stream(stmt, batch_size))

    def _stream(self, stmt: Any, size: int = 20_000) -> Iterator[list[Any]]:
        sql, params = compile_for_driver(stmt, self.engine.dialect)
        with translated(self.where), self.engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            cursor = server_side_cursor(dbapi, self.engine.dialect)
            try:
                cursor.execute(sql, params)
                while part := cursor.fetchmany(size):
                    yield part
            finally:
                cursor.close()
                conn.rollback()

    def lookup(self, entity: str, keys: Sequence[Key]) -> dict[Key, str]:
        table, key_names = self.tables[entity], self.keys[entity]
        width = len(key_names)
        found: dict[Key, str] = {}
        with translated(self.where), self.engine.connect() as conn:
            for chunk in _chunks(keys):
                stmt = select(*(table.c[k] for k in key_names), table.c[schema.FINGERPRINT])
                stmt = self._live(stmt, table).where(
                    key_filter(table, key_names, chunk, conn.dialect.name)
                )
                found.update((tuple(r[:width]), r[width]) for r in conn.execute(stmt))
        return found

    def holders(self, entity: str, field_name: str, values: Sequence[Any]) -> dict[Any, Key]:
        table, key_names = self.tables[entity], self.keys[entity]
        found: dict[Any, Key] = {}
        distinct = list(dict.fromkeys(values))
        with translated(self.where), self.engine.connect() as conn:
            for start in range(0, len(distinct), _LOOKUP_CHUNK):
                chunk = distinct[start : start + _LOOKUP_CHUNK]
                stmt = select(table.c[field_name], *(table.c[k] for k in key_names)).where(
                    table.c[field_name].in_(chunk)
                )
                for row in conn.execute(self._live(stmt, table)):
                    found.setdefault(row[0], tuple(row[1:]))
        return found

    def existing(self, entity: str, keys: Sequence[Key]) -> set[Key]:
        return set(self.lookup(entity, keys))

    def write(self, entity: str, batch: WriteBatch) -> None:
        self.write_with(entity, lambda conn, table, now: batch)

    def write_with(
        self, entity: str, first: Callable[[Connection, Table, dt.datetime], WriteBatch]
    ) -> None:
        """Write the batch ``first`` returns in the transaction it may write rows into
        (it is given the connection, the target table and the sync time)."""
        table, key_names = self.tables[entity], self.keys[entity]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        tail: tuple[Any, ...] = (now, None) if self.soft else (now,)
        with translated(self.where), self.engine.begin() as conn:
            batch = first(conn, table, now)
            rows = zip(batch.rows, batch.fingerprints, strict=True)
            write_rows(
                conn,
                table,
                key_names,
                [(*row, fp, *tail) for row, fp in rows],
                insert_only=batch.insert_only,
            )
            for chunk in _chunks(batch.deletes):
                where = key_filter(table, key_names, chunk, conn.dialect.name)
                if self.soft:
                    conn.execute(
                        update(table)
                        .where(where, table.c[schema.DELETED_AT].is_(None))
                        .values({schema.DELETED_AT: now, schema.SYNCED_AT: now})
                    )
                else:
                    conn.execute(delete(table).where(where))
            if batch.checkpoint is not None:
                self._save_checkpoint(conn, batch.checkpoint, now)

    def forget_checkpoints(self, names: Sequence[str]) -> None:
        cp = self.checkpoints
        with translated(self.where), self.engine.begin() as conn:
            conn.execute(
                delete(cp).where(cp.c.pipeline == self.spec.name, cp.c.entity.in_(list(names)))
            )

    def load_checkpoint(self, entity: str) -> Checkpoint | None:
        cp = self.checkpoints
        with translated(self.where), self.engine.connect() as conn:
            state = conn.execute(
                select(cp.c.state).where(cp.c.pipeline == self.spec.name, cp.c.entity == entity)
            ).scalar_one_or_none()
        return None if state is None else Checkpoint.from_json(self.spec.name, entity, state)

    def orphans(self, entity: str, field_name: str, parent: str) -> int:
        child, mother = self.tables[entity], self.tables[parent]
        parent_key = mother.c[self.keys[parent][0]]
        inner = self._live(select(parent_key).where(parent_key == child.c[field_name]), mother)
        stmt = self._live(
            select(func.count())
            .select_from(child)
            .where(child.c[field_name].is_not(None), ~inner.exists()),
            child,
        )
        with translated(self.where), self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def close(self) -> None:
        self.engine.dispose()

    # -- internals ------------------------------------------------------------------------------

    def _live(self, stmt: Any, table: Table) -> Any:
        return stmt.where(table.c[schema.DELETED_AT].is_(None)) if self.soft else stmt

    def _save_checkpoint(self, conn: Any, checkpoint: Checkpoint, now: dt.datetime) -> None:
        save_checkpoint(conn, self.checkpoints, checkpoint, now)


def save_checkpoint(conn: Any, cp: Table, checkpoint: Checkpoint, now: dt.datetime) -> None:
    """Write ``checkpoint`` into a checkpoints table (pipeline, entity, state, updated_at)
    in ``conn``'s transaction."""
    match = (cp.c.pipeline == checkpoint.pipeline) & (cp.c.entity == checkpoint.entity)
    changed = conn.execute(
        update(cp).where(match).values(state=checkpoint.to_json(), updated_at=now)
    ).rowcount
    if not changed:
        conn.execute(
            insert(cp).values(
                pipeline=checkpoint.pipeline,
                entity=checkpoint.entity,
                state=checkpoint.to_json(),
                updated_at=now,
            )
        )


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _LOOKUP_CHUNK] for i in range(0, len(items), _LOOKUP_CHUNK)]
