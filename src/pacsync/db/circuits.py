"""Circuit breaker states in the store, shared by every worker on every machine.

Writes are compare-and-set: an UPDATE guarded by the row as it was read (or an
INSERT that loses on the primary key), so concurrent workers never both win.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import circuit_breakers
from pacsync.domain.circuit import CircuitState, parse_status

_t = circuit_breakers.c


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _equals(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    """``column = value``, or ``column IS NULL`` for None (NULL-safe on every backend)."""
    return column.is_(None) if value is None else column == value


def _state(row: Any) -> CircuitState:
    return CircuitState(
        connection=row.connection,
        state=parse_status(row.state),
        failures=row.failures,
        opened_at=row.opened_at,
        probe_started_at=row.probe_started_at,
        last_error=row.last_error,
    )


class CircuitStore:
    """A :class:`pacsync.ports.CircuitStore` over the ``circuit_breakers`` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, connection: str) -> CircuitState | None:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(circuit_breakers).where(_t.connection == connection)).first()
        return None if row is None else _state(row)

    def all(self) -> list[CircuitState]:
        with translated("store"), self.engine.connect() as conn:
            rows = conn.execute(select(circuit_breakers).order_by(_t.connection)).all()
        return [_state(row) for row in rows]

    def compare_and_set(self, expected: CircuitState | None, new: CircuitState) -> bool:
        if expected is not None and expected.connection != new.connection:
            raise ValueError(f"{expected.connection!r} is not {new.connection!r}")
        values = {
            "state": new.state,
            "failures": new.failures,
            "opened_at": new.opened_at,
            "probe_started_at": new.probe_started_at,
            "last_error": new.last_error,
            "updated_at": _now(),
        }
        with translated("store"):
            if expected is None:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(
                            insert(circuit_breakers).values(connection=new.connection, **values)
                        )
                except IntegrityError:
                    return False
                return True
            with self.engine.begin() as conn:
                result = conn.execute(
                    update(circuit_breakers)
                    .where(
                        _t.connection == expected.connection,
                        _t.state == expected.state,
                        _t.failures == expected.failures,
                        _equals(_t.opened_at, expected.opened_at),
                        _equals(_t.probe_started_at, expected.probe_started_at),
                    )
                    .values(**values)
                )
            return result.rowcount == 1

    def reset(self, connection: str) -> None:
        with translated("store"), self.engine.begin() as conn:
            conn.execute(delete(circuit_breakers).where(_t.connection == connection))
