"""A fresh full load from PostgreSQL into PostgreSQL, mapped and checked by the source.

The source runs the entity's mapping and row rules as SQL (see
:mod:`pacsync.connectors.sql.pushdown`) and sends the rows that pass as binary
COPY data, which go into the target's COPY as they come, in blocks, without
being decoded here.  Rows the SQL cannot vouch for are read back as plain
source rows for the row path.  Each key range is one target transaction: the
copied rows, the row path's rows and the checkpoint commit together.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from sqlalchemy import Connection, Table

from pacsync.connectors.sql import pushdown
from pacsync.connectors.sql.copy_relay import relay
from pacsync.connectors.sql.destination import SqlDestination
from pacsync.connectors.sql.errors import translate
from pacsync.connectors.sql.source import SqlSource
from pacsync.domain.records import Key, Row
from pacsync.ports import WriteBatch
from pacsync.ports.bulk_load import Finish

STREAMS = 2  # source backends computing a range's rows at once


class SqlBulkLoad:
    """A :class:`pacsync.ports.BulkLoad` between a PostgreSQL source and destination."""

    def __init__(self, source: SqlSource, destination: SqlDestination) -> None:
        self.source = source
        self.destination = destination
        self._plans: dict[str, pushdown.Pushdown | str] = {}

    # -- BulkLoad port --------------------------------------------------------------------------

    def refusal(self, entity: str) -> str | None:
        plan = self._plan(entity)
        return plan if isinstance(plan, str) else None

    def load(
        self, entity: str, after: Key | None, size: int, finish: Finish
    ) -> tuple[Key | None, int]:
        middle, upto = self._bounds(entity, after, size)
        halves = [(after, upto)] if middle is None else [(after, middle), (middle, upto)]
        copied = 0

        def copy_in(conn: Connection, table: Table, now: dt.datetime) -> WriteBatch:
            nonlocal copied
            copied = self._copy(conn, table, now, entity, halves)
            # a range that copied whole (and holds no row written since its bound was
            # read) has nothing left for the row path
            whole = upto is not None and copied == size == self._count(entity, after, upto)
            return finish([] if whole else self._remainder(entity, after, upto), upto)

        self.destination.write_with(entity, copy_in)
        return upto, copied

    def _bounds(self, entity: str, after: Key | None, size: int) -> tuple[Key | None, Key | None]:
        """The keys ending the first half and the whole of the next ``size`` rows after
        ``after`` (None where the source ends before).  Two OFFSET reads of the key index
        (one pass with row_number() is several times slower)."""
        if size // STREAMS < 1:
            return None, self._key_at(entity, after, size)
        half = self._key_at(entity, after, size // STREAMS)
        if half is None:  # fewer rows left than half a range: one read takes them
            return None, None
        return half, self._key_at(entity, after, size)

    def _key_at(self, entity: str, after: Key | None, offset: int) -> Key | None:
        """The key of the ``offset``-th row after ``after``, in key order."""
        key = self._key(entity)
        stmt = (
            f"SELECT {key} FROM {self._table(entity)} WHERE {self._range(key, after, None)} "
            f"ORDER BY {key} OFFSET {int(offset) - 1} LIMIT 1"
        )
        rows = self._fetch(stmt)
        return (rows[0][0],) if rows else None

    def _count(self, entity: str, after: Key | None, upto: Key | None) -> int:
        key = self._key(entity)
        stmt = f"SELECT count(*) FROM {self._table(entity)} WHERE {self._range(key, after, upto)}"
        return int(self._fetch(stmt)[0][0])

    def _remainder(self, entity: str, after: Key | None, upto: Key | None) -> list[Row]:
        """Source rows of the range that the copy left for the row path."""
        query = self.source.query(entity)
        quote = self.source.engine.dialect.identifier_preparer.quote
        raw = [f"{quote(c.name)} AS c{j}" for j, c in enumerate(query.columns)]
        shown = ", ".join(f"c{j}" for j in range(len(query.columns)))
        inner = self._inner(entity, after, upto, raw, fenced=False)
        stmt = f"SELECT {shown}, _fp FROM ({inner}) AS s WHERE {self._passes(entity)} IS NOT TRUE"
        return self._fetch(stmt)

    def _copy(
        self,
        conn: Connection,
        table: Table,
        now: dt.datetime,
        entity: str,
        halves: list[tuple[Key | None, Key | None]],
    ) -> int:
        """COPY the range's passing rows from the source into ``table``; how many.  Its
        ``halves`` are read by source backends of their own at once."""
        plan = self._ready(entity)
        values = [f"v{i}::{cast}" for i, cast in enumerate(plan.casts)]
        tail = [pushdown.literal(now.isoformat(sep=" ")) + "::timestamp"]
        if self.destination.soft:
            tail.append("NULL::timestamp")
        statements = [
            f"COPY (SELECT {', '.join(values)}, _fp::text, {', '.join(tail)} "
            f"FROM ({self._inner(entity, low, high, [], fenced=True)}) AS s "
            f"WHERE {self._passes(entity)} IS TRUE) TO STDOUT (FORMAT BINARY)"
            for low, high in halves
        ]
        preparer = conn.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(c.name) for c in table.columns)
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        try:
            with raw.cursor() as cur:
                copy_sql = f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN "
                with cur.copy(copy_sql + "(FORMAT BINARY)") as into:
                    relay(self.source.engine, statements, into, self.source.where)
                return int(cur.rowcount)
        except psycopg.Error as exc:
            raise translate(exc, self.destination.where) from exc

    # -- SQL ------------------------------------------------------------------------------------

    def _plan(self, entity: str) -> pushdown.Pushdown | str:
        if entity not in self._plans:
            self._plans[entity] = self._planned(entity)
        return self._plans[entity]

    def _planned(self, entity: str) -> pushdown.Pushdown | str:
        spec = self.source.spec.entities[entity]
        dialects = self.source.engine.dialect.name, self.destination.engine.dialect.name
        if dialects != ("postgresql", "postgresql"):
            return "the source and the destination are not both PostgreSQL"
        if not spec.pushdown:
            return "the entity sets pushdown: false"
        if len(spec.source.key) != 1:
            return "the source key has more than one column"
        query = self.source.query(entity)
        if query.fingerprint is None:
            return "the source computes no fingerprint"
        quote = self.source.engine.dialect.identifier_preparer.quote
        try:
            return pushdown.plan(spec, query.columns, quote)
        except pushdown.NotPushable as why:
            return str(why)

    def _ready(self, entity: str) -> pushdown.Pushdown:
        plan = self._plan(entity)
        if isinstance(plan, str):
            raise ValueError(f"entity '{entity}' cannot load in bulk: {plan}")
        return plan

    def _table(self, entity: str) -> str:
        preparer = self.source.engine.dialect.identifier_preparer
        return preparer.format_table(self.source.query(entity).table)

    def _key(self, entity: str) -> str:
        quote = self.source.engine.dialect.identifier_preparer.quote
        return quote(self.source.query(entity).keys[0].name)

    def _range(self, key: str, after: Key | None, upto: Key | None) -> str:
        parts = ["TRUE"]
        if after is not None:
            parts.append(f"{key} > {pushdown.literal(after[0])}")
        if upto is not None:
            parts.append(f"{key} <= {pushdown.literal(upto[0])}")
        return " AND ".join(parts)

    def _inner(
        self, entity: str, after: Key | None, upto: Key | None, extra: list[str], *, fenced: bool
    ) -> str:
        """The range's rows with their mapped values ``v0…``, fingerprint ``_fp`` and
        exactness ``_ok``.  ``fenced``: each computed once for every row (OFFSET 0 keeps the
        planner from inlining them), for the copy, which sends them all; otherwise the
        planner computes what the outer query needs, and the values of rows it sends."""
        plan = self._ready(entity)
        query = self.source.query(entity)
        fingerprint = query.fingerprint
        assert fingerprint is not None
        fp_sql = str(fingerprint.compile(dialect=self.source.engine.dialect))
        values = [f"{sql} AS v{i}" for i, sql in enumerate(plan.values)]
        ok = " AND ".join(plan.exact) or "TRUE"
        key = self._key(entity)
        selected = ", ".join([*values, *extra, f"{fp_sql} AS _fp", f"({ok}) AS _ok"])
        return (
            f"SELECT {selected} FROM {self._table(entity)} "
            f"WHERE {self._range(key, after, upto)} ORDER BY {key}"
            + (" OFFSET 0" if fenced else "")
        )

    def _passes(self, entity: str) -> str:
        return "(" + " AND ".join(["_ok", *self._ready(entity).rules]) + ")"

    # -- the wire -------------------------------------------------------------------------------

    def _fetch(self, stmt: str) -> list[Row]:
        raw = self.source.engine.raw_connection()
        try:
            conn = raw.driver_connection
            assert isinstance(conn, psycopg.Connection)
            with conn.cursor() as cur:
                cur.execute(stmt.encode())
                rows = [tuple(r) for r in cur.fetchall()]
            conn.rollback()
            return rows
        except psycopg.Error as exc:
            raise translate(exc, self.source.where) from exc
        finally:
            raw.close()
