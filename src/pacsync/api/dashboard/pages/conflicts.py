"""Conflicts: local, remote and base side by side per field, resolved through the API."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from pacsync.api.dashboard.auth import (
    CallerDep,
)
from pacsync.api.dashboard.rendering import audit_read, render, state_of

router = APIRouter(include_in_schema=False)


# -- conflicts -----------------------------------------------------------------------------


@router.get("/conflicts", response_class=HTMLResponse)
def conflicts_page(
    request: Request,
    caller: CallerDep,
    status: Annotated[str, Query(max_length=20)] = "open",
) -> HTMLResponse:
    state = state_of(request)
    wanted = status if status in ("open", "resolved", "ignored") else None
    items, total = state.store.conflicts.list(status=wanted, limit=100)
    audit_read(request, caller, "conflict.list")
    return render(
        request,
        "conflicts.html",
        caller,
        items=items,
        total=total,
        filter_status=status,
        counts=state.store.conflicts.counts(),
    )


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


@router.get("/conflicts/{conflict_id}", response_class=HTMLResponse)
def conflict_page(request: Request, caller: CallerDep, conflict_id: int) -> HTMLResponse:
    state = state_of(request)
    found = state.store.conflicts.get(conflict_id) if 0 < conflict_id < 2**31 else None
    if found is None:
        what = f"conflict {conflict_id}"
        return render(request, "missing.html", caller, what=what, code=404)
    audit_read(request, caller, "conflict.read", str(conflict_id))
    rows = []
    for f in found.fields:
        local, remote, base = f.get("local"), f.get("remote"), f.get("base")
        rows.append(
            {
                "field": f["field"],
                "local": _cell(local),
                "remote": _cell(remote),
                "base": _cell(base),
                "local_changed": local != base,
                "remote_changed": remote != base,
                "clash": base not in (local, remote) and local != remote,
            }
        )
    return render(
        request,
        "conflict.html",
        caller,
        conflict=found,
        rows=rows,
        resolved_json=json.dumps(found.resolved_value, indent=2, default=str),
        local_json=json.dumps({f["field"]: f.get("local") for f in found.fields}, default=str),
    )
