"""Bulk writers per database: COPY on PostgreSQL, batched upserts elsewhere.

A writer runs inside the caller's transaction; it never commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, types
from sqlalchemy.dialects import mysql

from pacsync.connectors.sql.keys import key_filter as keys_matching
from pacsync.domain.records import Key, Row


def write_rows(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[Row], *, insert_only: bool
) -> None:
    """Insert (``insert_only``) or upsert ``rows`` whose values follow ``table``'s columns."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        _pg_copy(conn, table, keys, rows, insert_only=insert_only)
    elif dialect == "sqlite":
        _sqlite(conn, table, keys, rows, insert_only=insert_only)
    elif dialect in ("mysql", "mariadb"):
        _mysql(conn, table, rows, insert_only=insert_only)
    else:
        _replace(conn, table, keys, rows, insert_only=insert_only)


def key_filter(table: Table, keys: Sequence[str], values: Sequence[Key], dialect: str) -> Any:
    return keys_matching([table.c[k] for k in keys], values, dialect)


def _names(conn: Connection, table: Table) -> tuple[str, list[str]]:
    quote = conn.dialect.identifier_preparer.quote
    target = conn.dialect.identifier_preparer.format_table(table)
    return target, [quote(c.name) for c in table.columns]


def _pg_copy(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[Row], *, insert_only: bool
) -> None:
    target, cols = _names(conn, table)
    raw = conn.connection.driver_connection
    assert raw is not None
    column_list = ", ".join(cols)
    types = [_pg_type(c.type) for c in table.columns]
    with raw.cursor() as cur:
        if insert_only:
            with cur.copy(f"COPY {target} ({column_list}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            return
        cur.execute(
            f"CREATE TEMP TABLE _pacsync_stage (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        with cur.copy(f"COPY _pacsync_stage ({column_list}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
        quote = conn.dialect.identifier_preparer.quote
        key_list = ", ".join(quote(k) for k in keys)
        updates = ", ".join(
            f"{c} = EXCLUDED.{c}" for c in cols if c not in {quote(k) for k in keys}
        )
        cur.execute(
            f"INSERT INTO {target} ({column_list}) SELECT {column_list} FROM _pacsync_stage "
            f"ON CONFLICT ({key_list}) DO UPDATE SET {updates}"
        )


def _pg_type(column_type: Any) -> str:
    """The PostgreSQL type whose binary form COPY sends for a target column."""
    checks: list[tuple[type, str]] = [
        (types.Boolean, "bool"),
        (types.BigInteger, "int8"),
        (types.SmallInteger, "int2"),
        (types.Integer, "int4"),
        (types.Float, "float8"),
        (types.Numeric, "numeric"),
        (types.DateTime, "timestamp"),
        (types.Date, "date"),
    ]
    for kind, name in checks:
        if isinstance(column_type, kind):
            return name
    return "text"


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _sqlite(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[Row], *, insert_only: bool
) -> None:
    target, cols = _names(conn, table)
    quote = conn.dialect.identifier_preparer.quote
    marks = ", ".join("?" for _ in cols)
    sql = f"INSERT INTO {target} ({', '.join(cols)}) VALUES ({marks})"
    if not insert_only:
        key_cols = {quote(k) for k in keys}
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key_cols)
        sql += f" ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {updates}"
    values = [tuple(_sqlite_value(v) for v in row) for row in rows]
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.executemany(sql, values)


def _mysql(conn: Connection, table: Table, rows: Sequence[Row], *, insert_only: bool) -> None:
    names = [c.name for c in table.columns]
    params = [dict(zip(names, row, strict=True)) for row in rows]
    stmt = mysql.insert(table)
    if not insert_only:
        stmt = stmt.on_duplicate_key_update({n: stmt.inserted[n] for n in names})
    conn.execute(stmt, params)


def _replace(
    conn: Connection, table: Table, keys: Sequence[str], rows: Sequence[Row], *, insert_only: bool
) -> None:
    names = [c.name for c in table.columns]
    if not insert_only:
        positions = [names.index(k) for k in keys]
        values = [tuple(row[i] for i in positions) for row in rows]
        for start in range(0, len(values), 1000):
            chunk = values[start : start + 1000]
            conn.execute(delete(table).where(key_filter(table, keys, chunk, conn.dialect.name)))
    conn.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])


__all__ = ["key_filter", "write_rows"]
