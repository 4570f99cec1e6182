"""The overview and the property sync page (``/pacs-sync``): live progress over
server-sent events, history, reconciliation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from pacsync import bootstrap
from pacsync.api.dashboard import views
from pacsync.api.dashboard.auth import (
    CallerDep,
)
from pacsync.api.dashboard.rendering import render, state_of
from pacsync.api.deps import Audit, AuditEntry
from pacsync.api.state import ApiState
from pacsync.domain.access import Role
from pacsync.errors import PacsyncError
from pacsync.sync.reconcile import reconcile

router = APIRouter(include_in_schema=False)
EVENTS_FOR_S = 300.0  # a stream ends after this; the browser reconnects by itself
EVENTS_EVERY_S = 0.5


# -- overview ------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, caller: CallerDep) -> HTMLResponse:
    state = state_of(request)
    return render(
        request,
        "overview.html",
        caller,
        pipelines=views.pipelines(state),
        chart=views.records_chart(state),
        queues=views.queue_depths(state),
        circuits=views.circuits(state),
        errors=views.recent_errors(state),
        conflicts=state.store.conflicts.counts(),
        dead_letters=state.store.dead_letters.count(),
    )


# -- property sync -------------------------------------------------------------------------


def _sql_pipelines(state: ApiState) -> list[str]:
    return [p.name for p in views.pipelines(state) if p.valid and p.sql]


@router.get("/pacs-sync", response_class=HTMLResponse)
def pacs_sync(
    request: Request,
    caller: CallerDep,
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    state = state_of(request)
    names = _sql_pipelines(state)
    chosen = pipeline or ("property-assessment" if "property-assessment" in names else None)
    chosen = chosen or (names[0] if names else None)
    if chosen is None:
        return render(request, "pacs_sync.html", caller, names=names, chosen=None)
    try:
        found = views.sync_pipeline(state, chosen)
    except PacsyncError as error:
        return render(
            request, "pacs_sync.html", caller, names=names, chosen=None, error=error, code=404
        )
    history, _ = state.store.jobs.page(pipeline=chosen, limit=20)
    active = [views.job_summary(j) for j in state.store.jobs.active(chosen)]
    return render(
        request,
        "pacs_sync.html",
        caller,
        names=names,
        chosen=chosen,
        found=found,
        history=history,
        last_runs=views.entity_last_runs(history),
        active=active,
    )


@router.get("/pacs-sync/events")
async def job_events(
    request: Request,
    caller: CallerDep,
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
    job: Annotated[list[str] | None, Query(max_length=50)] = None,
) -> StreamingResponse:
    """Server-sent events: the active jobs (of ``pipeline``) and the named ``job`` ids,
    sent whenever they change, as ``event: jobs``."""
    state = state_of(request)
    ids = [j[:64] for j in job or []]

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + EVENTS_FOR_S
        last = ""
        yield "retry: 1000\n\n"
        while loop.time() < ends and not await request.is_disconnected():
            data = await run_in_threadpool(views.live_jobs, state, pipeline, ids)
            text = json.dumps(data, default=str)
            if text != last:
                last = text
                yield f"event: jobs\ndata: {text}\n\n"
            else:
                yield ": idle\n\n"
            await asyncio.sleep(EVENTS_EVERY_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class ReconcileRequest(BaseModel):
    pipeline: str = Field(min_length=1, max_length=100)


@router.post("/pacs-sync/reconcile")
def reconcile_now(
    body: ReconcileRequest,
    request: Request,
    entry: Annotated[AuditEntry, Audit("pipeline.reconcile", Role.OPERATOR)],
) -> dict[str, Any]:
    """Compare source and target (``pacsync reconcile``): the checklist, as JSON.  The
    page's script calls it like the API (bearer token from the session, CSRF header)."""
    state = state_of(request)
    entry.target = body.pipeline
    _, spec = bootstrap.pipeline(body.pipeline, state.settings)
    source, destination = bootstrap.source(spec), bootstrap.destination(spec)
    try:
        for name in spec.entities:
            destination.prepare(name)
        reports = reconcile(spec, source, destination, state.store.dead_letters)
    finally:
        source.close()
        destination.close()
    entry.outcome = "match" if all(r.explained for r in reports) else "mismatch"
    return {
        "entities": [
            {
                "entity": r.entity,
                "source_rows": r.source_rows,
                "target_rows": r.target_rows,
                "content_match": r.content_match,
                "dead_letters": r.dead_letters,
                "parked_in_source": r.parked_in_source,
                "parked_in_target": r.parked_in_target,
                "orphans": [
                    {"field": o.field, "parent": o.parent, "source": o.source, "target": o.target}
                    for o in r.orphans
                ],
                "explained": r.explained,
            }
            for r in reports
        ]
    }
