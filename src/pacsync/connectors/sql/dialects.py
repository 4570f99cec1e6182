"""What differs between databases: row fingerprints, the cursor bound, change tracking.

Fingerprints are computed by the source database where it has a fast hash, so
that change detection moves only keys and hashes over the network; elsewhere
(SQLite, Firebird) the same values are hashed in Python.  A fingerprint is
only ever compared with fingerprints from the same source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xxhash
from sqlalchemy import Column, literal_column, text, types
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import TextClause

UNIT = "\x1f"  # separates values
NULL = "\x1e"  # stands for NULL


def python_fingerprint(values: Sequence[Any]) -> str:
    """Fingerprint computed in Python, for databases without a suitable hash function."""
    parts = [NULL if v is None else str(v) for v in values]
    return format(xxhash.xxh3_64_intdigest(UNIT.join(parts).encode()), "016x")


_PG_HASHABLE = (
    types.Integer,
    types.Numeric,
    types.String,
    types.Date,
    types.DateTime,
    types.Time,
    types.Boolean,
    types.LargeBinary,
    types.Uuid,
    types.Interval,
)


def fingerprint_expression(dialect: Dialect, columns: Sequence[Column[Any]]) -> Any:
    """A SQL expression hashing ``columns`` in the source, or None to hash in Python."""
    name = dialect.name
    if name == "postgresql":
        # Hashes each field with its type's own hash function (no text conversion): twice
        # as fast as hashing the text form; types without one are hashed as text.
        parts = ", ".join(
            _q(dialect, c) if isinstance(c.type, _PG_HASHABLE) else f"({_q(dialect, c)})::text"
            for c in columns
        )
        return literal_column(f"hash_record_extended(ROW({parts}), 0)::text")
    if name in ("mysql", "mariadb"):
        parts = ", ".join(f"COALESCE({_q(dialect, c)}, CHAR(30))" for c in columns)
        return literal_column(f"LEFT(MD5(CONCAT_WS(CHAR(31), {parts})), 16)")
    if name == "mssql":
        pieces = []
        for c in columns:
            if isinstance(c.type, types.DateTime | types.Date | types.Time):
                value = f"CONVERT(NVARCHAR(40), {_q(dialect, c)}, 126)"
            elif isinstance(c.type, types.LargeBinary | types._Binary):
                value = f"CONVERT(NVARCHAR(MAX), {_q(dialect, c)}, 2)"
            else:
                value = f"CAST({_q(dialect, c)} AS NVARCHAR(MAX))"
            pieces.append(f"ISNULL({value}, NCHAR(30))")
        body = ", NCHAR(31), ".join(pieces) if len(pieces) > 1 else f"{pieces[0]}, N''"
        return literal_column(
            f"LOWER(LEFT(CONVERT(VARCHAR(34), HASHBYTES('MD5', CONCAT({body})), 2), 16))"
        )
    return None


def _q(dialect: Dialect, column: Column[Any]) -> str:
    """The column as SQLAlchemy renders it in a SELECT of its table (schema included)."""
    return str(column.compile(dialect=dialect))


def is_rowversion(dialect: Dialect, column: Column[Any], kind: str) -> bool:
    if kind == "rowversion":
        return True
    if kind != "auto" or dialect.name != "mssql":
        return False
    return type(column.type).__name__.upper() in ("TIMESTAMP", "ROWVERSION")


def cursor_bound_query(dialect: Dialect) -> TextClause:
    """SQL Server: rows below MIN_ACTIVE_ROWVERSION() belong to committed transactions."""
    assert dialect.name == "mssql"
    return text("SELECT MIN_ACTIVE_ROWVERSION()")


def change_versions_query(dialect: Dialect, table_ref: str) -> TextClause:
    assert dialect.name == "mssql"
    return text(
        "SELECT CHANGE_TRACKING_CURRENT_VERSION(), "
        "CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(:table_ref))"
    ).bindparams(table_ref=table_ref)


def change_rows_query(
    dialect: Dialect,
    table_ref: str,
    keys: Sequence[str],
    columns: Sequence[Column[Any]],
    fingerprint: Any,
) -> TextClause:
    """CHANGETABLE(CHANGES ...) joined to the table: deleted rows come back with NULL columns."""
    assert dialect.name == "mssql"
    quote = dialect.identifier_preparer.quote
    ct_keys = ", ".join(f"CT.{quote(k)} AS {quote('ct_' + k)}" for k in keys)
    selected = ", ".join(f"T.{quote(c.name)}" for c in columns)
    prefix = dialect.identifier_preparer.format_table(columns[0].table) + "."
    fp_sql = str(fingerprint.compile(dialect=dialect)).replace(prefix, "T.")
    join = " AND ".join(f"T.{quote(k)} = CT.{quote(k)}" for k in keys)
    return text(
        f"SELECT CT.SYS_CHANGE_OPERATION, {ct_keys}, {selected}, {fp_sql} "
        f"FROM CHANGETABLE(CHANGES {table_ref}, :since) AS CT "
        f"LEFT OUTER JOIN {table_ref} AS T ON {join} "
        "ORDER BY CT.SYS_CHANGE_VERSION"
    )


def server_side_cursor(dbapi_connection: Any, dialect: Dialect) -> Any:
    """A DBAPI cursor that streams rows instead of buffering the whole result."""
    if dialect.driver == "psycopg":
        return dbapi_connection.cursor(name=f"pacsync_{id(dbapi_connection):x}")
    if dialect.driver in ("pymysql", "mysqldb"):
        import pymysql.cursors

        return dbapi_connection.cursor(pymysql.cursors.SSCursor)
    return dbapi_connection.cursor()
