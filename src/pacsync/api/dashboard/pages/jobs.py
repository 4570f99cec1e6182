"""Jobs, their queues and errors, and dead letters."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from pacsync.api.dashboard import views
from pacsync.api.dashboard.auth import (
    CallerDep,
)
from pacsync.api.dashboard.rendering import audit_read, render, state_of

router = APIRouter(include_in_schema=False)


# -- jobs, queues, dead letters ------------------------------------------------------------

STATUSES = ("queued", "running", "succeeded", "failed", "interrupted", "cancelled")


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    caller: CallerDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> HTMLResponse:
    state = state_of(request)
    wanted = status if status in STATUSES else None
    items, total = state.store.jobs.page(
        status=wanted, pipeline=pipeline or None, limit=50, offset=offset
    )
    letters = state.store.dead_letters.find(status="open", limit=50, offset=0)
    audit_read(request, caller, "dead_letter.list")
    return render(
        request,
        "jobs.html",
        caller,
        jobs=[views.job_summary(j) | {"view": j} for j in items],
        total=total,
        offset=offset,
        filter_status=wanted,
        pipeline=pipeline or "",
        statuses=STATUSES,
        pipelines=[p.name for p in views.pipelines(state)],
        queues=views.queue_depths(state),
        letters=letters,
        letter_total=state.store.dead_letters.count(),
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request, caller: CallerDep, job_id: Annotated[str, PathParam(max_length=64)]
) -> HTMLResponse:
    state = state_of(request)
    job = state.store.jobs.get(job_id[:64])
    if job is None:
        return render(request, "missing.html", caller, what=f"job {job_id}", code=404)
    audit_read(request, caller, "job.read", job.id)
    return render(
        request,
        "job.html",
        caller,
        job=job,
        summary=views.job_summary(job),
        errors=state.store.jobs.errors(job.id),
        request_json=json.dumps(job.request or {}, indent=2, default=str),
        progress_json=json.dumps(job.progress, indent=2, default=str),
    )


@router.get("/dead-letters/{letter_id}", response_class=HTMLResponse)
def letter_page(request: Request, caller: CallerDep, letter_id: int) -> HTMLResponse:
    state = state_of(request)
    letter = state.store.dead_letters.get(letter_id)
    if letter is None:
        return render(request, "missing.html", caller, what=f"dead letter {letter_id}", code=404)
    audit_read(request, caller, "dead_letter.read", str(letter_id))
    return render(
        request,
        "letter.html",
        caller,
        letter=letter,
        letter_json=json.dumps(letter, indent=2, default=str),
    )
