"""``/sync``: start a pipeline's sync and see what is running and how each last ended."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, StateDep, Viewer
from pacsync.api.schemas import Job, JobAccepted, LastRun, SyncStart, SyncStatus
from pacsync.bootstrap import jobs as job_layer
from pacsync.bootstrap import operations
from pacsync.domain.access import Role

router = APIRouter(prefix="/sync", tags=["sync"], responses=AUTHENTICATED)


@router.post(
    "/start",
    status_code=202,
    summary="Queue a full or incremental sync (operator)",
    responses=problems.responses(400, 404, 413, 422, 503),
)
def start(
    body: SyncStart,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("sync.start", Role.OPERATOR)],
) -> JobAccepted:
    entry.target = body.pipeline
    request = operations.sync_request(
        state.settings, body.pipeline, mode=body.sync_type, entities=body.entities, trigger="api"
    )
    job_id, created = job_layer.submit(
        state.settings, request, store=state.store, client=state.job_client()
    )
    entry.outcome = "queued"
    entry.detail = {"job_id": job_id, "sync_type": body.sync_type}
    return JobAccepted(job_id=job_id, status="queued", created=created, queue=request.queue)


@router.get(
    "/status",
    summary="Running and queued jobs, and each pipeline's last result (at most 0.5 s old)",
    response_model=SyncStatus,
)
async def status(state: StateDep, _who: Viewer) -> Response:
    def page() -> SyncStatus:
        jobs = state.store.jobs
        active = [
            *jobs.recent(status="running", limit=200),
            *jobs.recent(status="queued", limit=200),
        ]
        return SyncStatus(
            active=[Job.of(j) for j in active],
            last_runs=[LastRun(pipeline=j.pipeline, job=Job.of(j)) for j in jobs.latest_ended()],
        )

    return await state.snapshots.respond(("sync.status",), page)
