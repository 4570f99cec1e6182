"""Translating database driver errors into pacsync errors, at the edge.

Each driver reports the same failures differently; here they become the codes
users search for (PACS-001 timeouts, PACS-002 authentication, PACS-003 schema).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, NoSuchTableError, SQLAlchemyError

from pacsync.errors import (
    AuthenticationFailed,
    ConnectionTimeout,
    PacsyncError,
    SchemaMismatch,
    SourceError,
)

# (pattern in the driver's message, error class) — checked in order
_PATTERNS: list[tuple[re.Pattern[str], type[PacsyncError]]] = [
    (re.compile(p, re.IGNORECASE), cls)
    for p, cls in [
        (
            r"password authentication failed|access denied|login failed|"
            r"authentication failed|\(1045|\b18456\b|role .* does not exist",
            AuthenticationFailed,
        ),
        (  # before the connection patterns: "connection ... failed: database ... does not exist"
            r"database \"?[^\" ]+\"? does not exist|unknown database|\(1049|cannot open database",
            SchemaMismatch,
        ),
        (
            r"timeout|timed out|connection refused|could not connect|can't connect|"
            r"unable to connect|adaptive server is unavailable|\(2003|\(2013|\(2006|"
            r"server closed the connection|connection reset|no route to host|"
            r"name or service not known|could not translate host|database is locked|"
            r"terminating connection|the database system is (starting|shutting)|"
            r"connection .* failed|connection is closed",
            ConnectionTimeout,
        ),
        (
            r"does not exist|doesn't exist|unknown column|invalid column name|"
            r"invalid object name|no such table|no such column|\(1146|\(1054|undefined",
            SchemaMismatch,
        ),
    ]
]


def translate(exc: BaseException, where: str) -> PacsyncError:
    """The pacsync error for a driver or SQLAlchemy error raised while talking to ``where``
    (``"source 'legacy'"``: the connection's name is kept on the error)."""
    if isinstance(exc, PacsyncError):
        return exc
    error = _classified(exc, where)
    named = _NAMED.search(where)
    error.connection = named.group(1) if named else None
    return error


_NAMED = re.compile(r"^(?:source|destination) '([^']+)'")


def _classified(exc: BaseException, where: str) -> PacsyncError:
    if isinstance(exc, NoSuchTableError):
        return SchemaMismatch(f"{where}: table {exc} does not exist")
    text = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc)
    first = " ".join(text.split())[:300]
    for pattern, cls in _PATTERNS:
        if pattern.search(first):
            return cls(f"{where}: {first}")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return ConnectionTimeout(f"{where}: connection lost: {first}")
    return SourceError(f"{where}: {first}")


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Re-raise database errors inside the block as pacsync errors."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise translate(exc, where) from exc
