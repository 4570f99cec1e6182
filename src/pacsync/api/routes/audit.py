"""``/audit``: the audit trail, newest first, with filters (admin)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from pacsync.api.deps import AUTHENTICATED, Admin, StateDep
from pacsync.api.schemas import MAX_OFFSET
from pacsync.api.schemas_admin import AuditPage, AuditRecord

router = APIRouter(tags=["audit"], responses=AUTHENTICATED)
Text = Annotated[str | None, Query(max_length=400)]


def _utc(at: dt.datetime | None) -> dt.datetime | None:
    """The store keeps naive UTC times."""
    if at is None or at.tzinfo is None:
        return at
    return at.astimezone(dt.UTC).replace(tzinfo=None)


@router.get("/audit", summary="Who did what, when, from where, and how it ended (admin)")
def audit(
    state: StateDep,
    _who: Admin,
    *,
    actor: Text = None,
    action: Annotated[
        str | None, Query(max_length=100, description="a name, or a family: 'job.*'")
    ] = None,
    target: Text = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[dt.datetime | None, Query(description="at or after (UTC)")] = None,
    until: Annotated[dt.datetime | None, Query(description="before (UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AuditPage:
    items, total = state.store.audit.query(
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        since=_utc(since),
        until=_utc(until),
        limit=limit,
        offset=offset,
    )
    return AuditPage(
        items=[AuditRecord(**entry) for entry in items], total=total, limit=limit, offset=offset
    )
