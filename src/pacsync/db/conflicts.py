"""Conflicts: records both sides changed since the last sync, waiting for a decision.

Each conflict lists its fields as ``{field, local, remote, base}``.  Resolving
is a compare-and-set on ``status = 'open'``: a conflict is decided once, and a
second decision is :class:`InvalidState`.
"""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import conflicts
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidRequest, InvalidState, NotFound
from pacsync.ports import SyncDecision

_t = conflicts.c
STATUSES = ("open", "resolved", "ignored")


class Strategy(StrEnum):
    """How a conflict is decided."""

    USE_LOCAL = "use_local"  # keep this side's values
    USE_REMOTE = "use_remote"  # take the other side's values
    MERGE = "merge"  # per field, the side that changed; ``value`` decides fields both changed
    MANUAL = "manual"  # ``value`` is the record
    IGNORE = "ignore"  # leave both sides as they are

    @classmethod
    def parse(cls, value: str) -> Strategy:
        try:
            return cls(value.strip().lower())
        except ValueError:
            valid = ", ".join(s.value for s in cls)
            raise InvalidRequest(
                f"unknown conflict strategy '{value}'", hint=f"Use one of: {valid}."
            ) from None


@dataclass(frozen=True)
class ConflictView:
    id: int
    pipeline: str
    entity: str
    record_key: str
    fields: list[dict[str, Any]]
    status: str
    strategy: str | None
    resolved_value: Any
    reason: str | None
    resolved_by: str | None
    detected_at: dt.datetime
    resolved_at: dt.datetime | None


def _view(row: Any) -> ConflictView:
    return ConflictView(**{c.name: row._mapping[c.name] for c in conflicts.columns})


def _fields(fields: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
    if not fields:
        raise InvalidRequest("a conflict needs at least one field")
    normal = []
    for entry in fields:
        if not isinstance(entry, dict) or not entry.get("field"):
            raise InvalidRequest(
                "each conflicting field needs a 'field' name",
                hint="Give fields as {field, local, remote, base}.",
            )
        normal.append({k: entry.get(k) for k in ("field", "local", "remote", "base")})
    return normal


def decided_value(fields: builtins.list[dict[str, Any]], strategy: Strategy, value: Any) -> Any:
    """The record a strategy settles on (None for IGNORE)."""
    if strategy is Strategy.IGNORE:
        return None
    if strategy is Strategy.MANUAL:
        if value is None:
            raise InvalidRequest(
                "the manual strategy needs a value", hint="Send the record as it should be."
            )
        return value
    if strategy is Strategy.USE_LOCAL:
        return {f["field"]: f["local"] for f in fields}
    if strategy is Strategy.USE_REMOTE:
        return {f["field"]: f["remote"] for f in fields}
    given = value if isinstance(value, dict) else {}
    merged: dict[str, Any] = {}
    both: builtins.list[str] = []
    for f in fields:
        name = f["field"]
        if name in given:
            merged[name] = given[name]
        elif f["local"] == f["base"]:
            merged[name] = f["remote"]
        elif f["remote"] == f["base"] or f["remote"] == f["local"]:
            merged[name] = f["local"]
        else:
            both.append(name)
    if both:
        raise InvalidRequest(
            f"both sides changed {', '.join(both)}: merge cannot choose",
            hint="Give those fields in the value, or use use_local, use_remote or manual.",
        )
    return merged


class ConflictStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        pipeline: str,
        entity: str,
        record_key: str,
        fields: builtins.list[dict[str, Any]],
    ) -> int:
        """Store an open conflict; its id."""
        with translated("store"), self.engine.begin() as conn:
            result = conn.execute(
                insert(conflicts).values(
                    pipeline=pipeline,
                    entity=entity,
                    record_key=record_key,
                    fields=_fields(fields),
                    status="open",
                    detected_at=utc_now(),
                )
            )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def latest(self, pipeline: str, entity: str, record_key: str) -> SyncDecision | None:
        """The record's latest conflict and its decision (pacsync.ports.SyncConflicts)."""
        stmt = (
            select(_t.id, _t.status, _t.fields, _t.resolved_value)
            .where(_t.pipeline == pipeline, _t.entity == entity, _t.record_key == record_key)
            .order_by(_t.id.desc())
            .limit(1)
        )
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return SyncDecision(int(row[0]), str(row[1]), list(row[2]), row[3])

    def open(
        self, pipeline: str, entity: str, record_key: str, fields: builtins.list[dict[str, Any]]
    ) -> int:
        return self.record(pipeline, entity, record_key, fields)

    def list(
        self,
        *,
        status: str | None = None,
        pipeline: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[ConflictView], int]:
        """Conflicts newest first, ``limit`` from ``offset``, and how many match in all."""
        if status is not None and status not in STATUSES:
            raise InvalidRequest(
                f"unknown conflict status '{status}'", hint=f"Use one of: {', '.join(STATUSES)}."
            )
        where = []
        if status:
            where.append(_t.status == status)
        if pipeline:
            where.append(_t.pipeline == pipeline)
        stmt = select(conflicts).where(*where).order_by(_t.id.desc()).limit(limit).offset(offset)
        counted = select(func.count()).select_from(conflicts).where(*where)
        with translated("store"), self.engine.connect() as conn:
            items = [_view(r) for r in conn.execute(stmt)]
            return items, int(conn.execute(counted).scalar_one())

    def get(self, conflict_id: int) -> ConflictView | None:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(conflicts).where(_t.id == conflict_id)).first()
        return None if row is None else _view(row)

    def counts(self) -> dict[str, int]:
        """Conflicts by status."""
        stmt = select(_t.status, func.count()).group_by(_t.status)
        with translated("store"), self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(stmt)}

    def resolve(
        self,
        conflict_id: int,
        strategy: Strategy | str,
        value: Any = None,
        reason: str | None = None,
        actor: str = "",
    ) -> ConflictView:
        """Decide an open conflict; NotFound for an unknown id, InvalidState when decided."""
        chosen = strategy if isinstance(strategy, Strategy) else Strategy.parse(strategy)
        current = self._open(conflict_id)
        decided = decided_value(current.fields, chosen, value)
        with translated("store"), self.engine.begin() as conn:
            changed = conn.execute(
                update(conflicts)
                .where(_t.id == conflict_id, _t.status == "open")
                .values(
                    status="ignored" if chosen is Strategy.IGNORE else "resolved",
                    strategy=chosen.value,
                    resolved_value=decided,
                    reason=reason,
                    resolved_by=actor or None,
                    resolved_at=utc_now(),
                )
            )
        if changed.rowcount != 1:
            self._open(conflict_id)  # decided meanwhile: raises
        found = self.get(conflict_id)
        assert found is not None
        return found

    def _open(self, conflict_id: int) -> ConflictView:
        found = self.get(conflict_id)
        if found is None:
            raise NotFound(f"no conflict {conflict_id}", hint="List the open conflicts.")
        if found.status != "open":
            by = f" by {found.resolved_by}" if found.resolved_by else ""
            raise InvalidState(
                f"conflict {conflict_id} is already {found.status}{by} ({found.strategy})",
                hint="A conflict is decided once; the decision stands.",
            )
        return found
