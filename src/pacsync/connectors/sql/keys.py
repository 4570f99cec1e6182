"""Selecting rows by key lists, in the form each database handles best."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, and_, any_, literal, or_, tuple_
from sqlalchemy.dialects.postgresql import ARRAY

from pacsync.domain.records import Key


def key_filter(columns: Sequence[Column[Any]], values: Sequence[Key], dialect: str) -> Any:
    """Rows whose key is one of ``values``.

    PostgreSQL gets one array parameter (``= ANY(...)``) instead of thousands of
    placeholders; SQL Server, which lacks row values, an OR of ANDs.
    """
    if len(columns) == 1:
        column = columns[0]
        scalars = [v[0] for v in values]
        if dialect == "postgresql":
            return column == any_(literal(scalars, ARRAY(column.type)))
        return column.in_(scalars)
    if dialect == "mssql":
        return or_(*(and_(*(c == x for c, x in zip(columns, v, strict=True))) for v in values))
    return tuple_(*columns).in_([tuple(v) for v in values])
