"""Reading an entity's rows from any SQLAlchemy database, in bounded batches.

Rows stream through server-side cursors (``stream_results``) and are never
held whole in memory.  Each row ends with its fingerprint.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Dialect,
    Engine,
    Float,
    MetaData,
    Numeric,
    Select,
    Table,
    and_,
    exists,
    func,
    or_,
    select,
)

from pacsync.connectors.sql import dialects
from pacsync.connectors.sql.errors import translated
from pacsync.connectors.sql.keys import key_filter
from pacsync.domain.mapping import source_columns
from pacsync.domain.records import Key, Row
from pacsync.domain.spec import EntitySpec, PipelineSpec
from pacsync.errors import SchemaMismatch, UnsupportedFeature
from pacsync.ports import Change, ChangeVersions


class EntityQuery:
    """The reflected table and the pieces of SQL for one entity."""

    def __init__(self, table: Table, name: str, entity: EntitySpec, dialect: Dialect) -> None:
        self.name = name
        self.entity = entity
        self.table = table
        src = entity.source
        present = {c.name.lower(): c for c in self.table.columns}
        self.columns: list[Column[Any]] = []
        for wanted in source_columns(entity):
            column = present.get(wanted.lower())
            if column is None:
                raise SchemaMismatch(
                    f"column '{wanted}' not found in table '{self.table.fullname}' "
                    f"(entity '{name}')",
                    hint="Fix the column name in the pipeline's mapping; the table has: "
                    + ", ".join(c.name for c in self.table.columns),
                )
            self.columns.append(column)
        self.keys = [self.columns[i] for i in range(len(src.key))]
        self.fingerprint = dialects.fingerprint_expression(dialect, self.columns)
        self.cursor: Column[Any] | None = None
        if entity.cursor is not None:
            self.cursor = present[entity.cursor.column.lower()]

    def rows(self) -> Select[Any]:
        selected: list[Any] = list(self.columns)
        if self.fingerprint is not None:
            selected.append(self.fingerprint.label("_pacsync_fp"))
        return select(*selected)

    def key_filter(self, keys: Sequence[Key], dialect_name: str) -> Any:
        return key_filter(self.keys, keys, dialect_name)

    def after(self, key: Key) -> Any:
        """Rows strictly after ``key`` in key order (expanded; SQL Server lacks row values)."""
        clauses = []
        for i, column in enumerate(self.keys):
            equal = [c == v for c, v in zip(self.keys[:i], key[:i], strict=True)]
            clauses.append(and_(*equal, column > key[i]))
        return or_(*clauses)


class SqlSource:
    """A :class:`pacsync.ports.Source` over one SQLAlchemy engine."""

    def __init__(self, spec: PipelineSpec, engine: Engine, *, connection_name: str) -> None:
        self.spec = spec
        self.engine = engine
        self.where = f"source '{connection_name}'"
        self._queries: dict[str, EntityQuery] = {}

    def query(self, entity: str) -> EntityQuery:
        if entity not in self._queries:
            spec = self.spec.entities[entity]
            with translated(self.where):
                table = Table(
                    spec.source.table,
                    MetaData(),
                    schema=spec.source.db_schema,
                    autoload_with=self.engine,
                )
            self._queries[entity] = EntityQuery(table, entity, spec, self.engine.dialect)
        return self._queries[entity]

    # -- Source port ----------------------------------------------------------------------------

    def check(self) -> None:
        with translated(self.where), self.engine.connect() as conn:
            conn.exec_driver_sql(
                "SELECT 1"
                if self.engine.dialect.name != "firebird"
                else "SELECT 1 FROM RDB$DATABASE"
            )
        for entity in self.spec.entities:
            self.query(entity)

    def columns(self, entity: str) -> list[str]:
        return [c.name for c in self.query(entity).columns]

    def scales(self, entity: str) -> dict[str, int]:
        found = {}
        for column in self.query(entity).columns:
            kind = column.type
            if not isinstance(kind, Numeric) or isinstance(kind, Float):
                continue
            if kind.asdecimal and kind.scale is not None:
                found[column.name] = int(kind.scale)
        return found

    def count(self, entity: str) -> int:
        q = self.query(entity)
        with translated(self.where), self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(q.table)).scalar_one())

    def read(
        self, entity: str, *, after_key: Key | None, batch_size: int, up_to: Key | None = None
    ) -> Iterator[list[Row]]:
        q = self.query(entity)
        stmt = q.rows().order_by(*q.keys)
        if after_key is not None:
            stmt = stmt.where(q.after(after_key))
        if up_to is not None:
            stmt = stmt.where(~q.after(up_to))
        yield from self._stream(stmt, batch_size, q.fingerprint is None)

    def read_fingerprints(
        self, entity: str, batch_size: int, *, ordered: bool = False
    ) -> Iterator[list[Row]]:
        q = self.query(entity)
        width = len(q.keys)
        if q.fingerprint is not None:
            stmt = select(*q.keys, q.fingerprint)
            yield from self._stream(stmt.order_by(*q.keys) if ordered else stmt, batch_size, False)
            return
        stmt = q.rows().order_by(*q.keys) if ordered else q.rows()
        for rows in self._stream(stmt, batch_size, True):
            yield [(*r[:width], r[-1]) for r in rows]

    def key_range(self, entity: str) -> tuple[Any, Any]:
        q = self.query(entity)
        stmt = select(func.min(q.keys[0]), func.max(q.keys[0]))
        for batch in self._stream(stmt, 1, False):
            return batch[0][0], batch[0][1]
        return None, None

    def read_keys(self, entity: str, keys: Sequence[Key]) -> list[Row]:
        q = self.query(entity)
        out: list[Row] = []
        step = 1000 if self.engine.dialect.name == "mssql" else 10_000
        for start in range(0, len(keys), step):
            chunk = keys[start : start + step]
            stmt = q.rows().where(q.key_filter(chunk, self.engine.dialect.name))
            for rows in self._stream(stmt, 10_000, q.fingerprint is None):
                out.extend(rows)
        return out

    def cursor_bound(self, entity: str) -> Any:
        q = self.query(entity)
        assert q.cursor is not None
        assert q.entity.cursor is not None
        if not dialects.is_rowversion(self.engine.dialect, q.cursor, q.entity.cursor.kind):
            return None
        return self._scalar(dialects.cursor_bound_query(self.engine.dialect))

    def cursor_max(self, entity: str) -> Any:
        q = self.query(entity)
        assert q.cursor is not None
        return self._scalar(select(func.max(q.cursor)))

    def read_since(self, entity: str, low: Any, high: Any, batch_size: int) -> Iterator[list[Row]]:
        q = self.query(entity)
        assert q.cursor is not None
        stmt = q.rows().order_by(q.cursor, *q.keys)
        if low is not None:
            stmt = stmt.where(q.cursor >= low)
        if high is not None:
            stmt = stmt.where(q.cursor < high)
        yield from self._stream(stmt, batch_size, q.fingerprint is None)

    def change_versions(self, entity: str) -> ChangeVersions:
        q = self._require_change_tracking(entity)
        with translated(self.where), self.engine.connect() as conn:
            current, min_valid = conn.execute(
                dialects.change_versions_query(self.engine.dialect, self._table_ref(q))
            ).one()
        if min_valid is None:
            raise UnsupportedFeature(
                f"change tracking is not enabled on table '{q.table.fullname}'",
                hint="ALTER TABLE ... ENABLE CHANGE_TRACKING, or use strategy cursor/hash_diff.",
            )
        return ChangeVersions(current=int(current), min_valid=int(min_valid))

    def read_changes(
        self, entity: str, since: int, batch_size: int
    ) -> tuple[int, Iterator[list[Change]]]:
        q = self._require_change_tracking(entity)
        return self._changes(q, since, batch_size)

    def orphans(self, entity: str, column: str, parent: str) -> int:
        child, mother = self.query(entity), self.query(parent)
        child_col = next(c for c in child.columns if c.name.lower() == column.lower())
        parent_key = mother.keys[0]
        stmt = (
            select(func.count())
            .select_from(child.table)
            .where(
                child_col.is_not(None),
                ~exists().where(parent_key == child_col),
            )
        )
        with translated(self.where), self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def close(self) -> None:
        self.engine.dispose()

    # -- internals ------------------------------------------------------------------------------

    def _stream(self, stmt: Any, batch_size: int, hash_here: bool) -> Iterator[list[Row]]:
        """Batches of plain tuples straight from the driver's server-side cursor.

        Rows skip SQLAlchemy's result processing, so every read path sees the
        driver's own values and fingerprints computed here always agree.
        """
        sql, params = compile_for_driver(stmt, self.engine.dialect)
        fp = dialects.python_fingerprint

        def batches() -> Iterator[list[Row]]:
            with translated(self.where), self.engine.connect() as conn:
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                cursor = dialects.server_side_cursor(dbapi, self.engine.dialect)
                try:
                    cursor.execute(sql, params)
                    while part := cursor.fetchmany(batch_size):
                        yield [(*r, fp(r)) for r in part] if hash_here else part
                finally:
                    cursor.close()
                    conn.rollback()

        yield from prefetched(batches())

    def _scalar(self, stmt: Any) -> Any:
        """One value as the driver returns it (the same form as streamed rows carry)."""
        for batch in self._stream(stmt, 1, False):
            return batch[0][0]
        return None

    def _require_change_tracking(self, entity: str) -> EntityQuery:
        if self.engine.dialect.name != "mssql":
            raise UnsupportedFeature(
                f"strategy change_tracking needs SQL Server; {self.where} is "
                f"{self.engine.dialect.name}",
                hint="Use strategy cursor (a rowversion/updated_at column) or hash_diff.",
            )
        return self.query(entity)

    def _table_ref(self, q: EntityQuery) -> str:
        quote = self.engine.dialect.identifier_preparer.quote
        schema = q.table.schema
        return f"{quote(schema)}.{quote(q.table.name)}" if schema else quote(q.table.name)

    def _changes(
        self, q: EntityQuery, since: int, batch_size: int
    ) -> tuple[int, Iterator[list[Change]]]:
        dialect = self.engine.dialect
        stmt = dialects.change_rows_query(
            dialect, self._table_ref(q), q.entity.source.key, q.columns, q.fingerprint
        )
        conn: Connection = self.engine.connect().execution_options(isolation_level="SNAPSHOT")
        with translated(self.where):
            conn.begin()
            current = int(
                conn.exec_driver_sql("SELECT CHANGE_TRACKING_CURRENT_VERSION()").scalar_one()
            )
        width = len(q.keys)

        def feed() -> Iterator[list[Change]]:
            try:
                with translated(self.where):
                    result = conn.execution_options(stream_results=True).execute(
                        stmt, {"since": since}
                    )
                    for part in result.partitions(batch_size):
                        yield [_change(r, width) for r in part]
            finally:
                conn.close()

        return current, feed()


_DONE = object()


def prefetched(batches: Iterator[list[Row]], depth: int = 2) -> Iterator[list[Row]]:
    """Read the next batches in a thread while the caller works on the current one.

    The driver waits on the network with the GIL released, so the database
    computes the next batch while Python maps and writes this one.  Errors
    are re-raised in the caller; stopping early closes the reader.
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as exc:  # handed over to the consuming thread
            slots.put(exc)
            return
        finally:
            close = getattr(batches, "close", None)
            if close is not None and stop.is_set():
                with contextlib.suppress(Exception):  # the consumer has its own error already
                    close()
        slots.put(_DONE)

    reader = threading.Thread(target=read, name="pacsync-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                continue
        reader.join()


def compile_for_driver(stmt: Any, dialect: Any) -> tuple[str, Any]:
    """SQL text and parameters in the driver's own paramstyle, bind processors applied."""
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    processors = getattr(compiled, "_bind_processors", {})
    for name, process in processors.items():
        if name in values and values[name] is not None:
            values[name] = process(values[name])
    if compiled.positional:
        return str(compiled), tuple(values[n] for n in compiled.positiontup)
    return str(compiled), values


def _change(row: Any, width: int) -> Change:
    op = row[0]
    key = tuple(row[1 : 1 + width])
    data = tuple(row[1 + width :])
    if op == "D" or data[0] is None:
        return Change("D", key, None)
    return Change(op, key, data)
