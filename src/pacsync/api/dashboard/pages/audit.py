"""The audit log (admins)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from pacsync.api.dashboard.auth import (
    CallerDep,
    require,
)
from pacsync.api.dashboard.rendering import render, state_of
from pacsync.domain.access import Role

router = APIRouter(include_in_schema=False)


# -- audit ---------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    caller: CallerDep,
    *,
    actor: Annotated[str | None, Query(max_length=400)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    target: Annotated[str | None, Query(max_length=400)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> HTMLResponse:
    require(caller, Role.ADMIN)
    state = state_of(request)
    start = None
    if since:
        try:
            start = dt.datetime.fromisoformat(since)
        except ValueError:
            start = None
    items, total = state.store.audit.query(
        actor=actor or None, action=action or None, target=target or None,
        outcome=outcome or None, since=start, until=None, limit=100, offset=offset,
    )  # fmt: skip
    filters = {"actor": actor or "", "action": action or "", "target": target or "",
               "outcome": outcome or "", "since": since or ""}  # fmt: skip
    return render(
        request, "audit.html", caller, items=items, total=total, offset=offset, filters=filters
    )
