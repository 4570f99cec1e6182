"""``/conflicts``: records both sides changed since the last sync, and their decisions.

A conflict holds both sides' values (patient data, often): listing and reading
are audited.  A conflict is decided once; deciding it again is a 409.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, StateDep
from pacsync.api.schemas import MAX_OFFSET
from pacsync.api.schemas_admin import Conflict, ConflictPage, ConflictResolve, ConflictSummary
from pacsync.db.conflicts import Strategy
from pacsync.domain.access import Role
from pacsync.errors import NotFound

router = APIRouter(prefix="/conflicts", tags=["conflicts"], responses=AUTHENTICATED)
ConflictId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the conflict's id")]
Status = Literal["open", "resolved", "ignored", "all"]


@router.get("", summary="Conflicts, newest first (field names only)")
def list_conflicts(
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("conflict.list", Role.VIEWER)],
    *,
    status: Status = "open",
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ConflictPage:
    wanted = None if status == "all" else status
    items, total = state.store.conflicts.list(
        status=wanted, pipeline=pipeline, limit=limit, offset=offset
    )
    entry.detail = {"pipeline": pipeline, "status": status, "returned": len(items)}
    return ConflictPage(
        items=[ConflictSummary.of(c) for c in items], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{conflict_id}",
    summary="One conflict: local, remote and base value of each field",
    responses=problems.responses(404),
)
def get_conflict(
    conflict_id: ConflictId,
    state: StateDep,
    _entry: Annotated[AuditEntry, Audit("conflict.read", Role.VIEWER, "conflict_id")],
) -> Conflict:
    found = state.store.conflicts.get(conflict_id)
    if found is None:
        raise NotFound(f"no conflict {conflict_id}", hint="List them: GET /api/v1/conflicts.")
    return Conflict.of(found)


@router.post(
    "/{conflict_id}/resolve",
    summary="Decide a conflict by a strategy (operator)",
    responses=problems.responses(400, 404, 409),
)
def resolve(
    conflict_id: ConflictId,
    body: ConflictResolve,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("conflict.resolve", Role.OPERATOR, "conflict_id")],
) -> Conflict:
    strategy = Strategy[body.strategy]
    entry.detail = {"strategy": body.strategy}
    decided = state.store.conflicts.resolve(
        conflict_id, strategy, body.value, body.reason, actor=entry.actor
    )
    return Conflict.of(decided)
