"""``/jobs``: queue, list, inspect, cancel and retry jobs (the API never runs one itself;
the workers do)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, StateDep, Viewer
from pacsync.api.schemas import (
    JOB_ID,
    MAX_OFFSET,
    JobAccepted,
    JobCancelled,
    JobCreate,
    JobDetail,
    JobPage,
    RetryQueued,
)
from pacsync.api.schemas import Job as JobModel
from pacsync.bootstrap import jobs as job_layer
from pacsync.bootstrap import operations
from pacsync.domain.access import Role

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=AUTHENTICATED)
JobId = Annotated[str, Path(pattern=JOB_ID, description="the job id or its first characters")]
Status = Literal["queued", "running", "succeeded", "failed", "interrupted", "cancelled"]


@router.post(
    "",
    status_code=202,
    summary="Queue a sync job (operator)",
    responses={
        200: {"model": JobAccepted, "description": "the idempotency key named a known job"},
        **problems.responses(400, 404, 413, 422, 503),
    },
)
def create(
    body: JobCreate,
    response: Response,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("job.submit", Role.OPERATOR)],
) -> JobAccepted:
    entry.target = body.pipeline
    request = operations.sync_request(
        state.settings,
        body.pipeline,
        mode=body.mode,
        entities=body.entities,
        priority=body.priority,
        key=body.idempotency_key,
        trigger="api",
    )
    job_id, created = job_layer.submit(
        state.settings, request, store=state.store, client=state.job_client()
    )
    entry.detail = {"job_id": job_id, "mode": body.mode, "created": created}
    if not created:
        response.status_code = 200
    status = state.store.jobs.status_of(job_id) or "queued"
    return JobAccepted(job_id=job_id, status=status, created=created, queue=request.queue)


@router.get(
    "",
    summary="Jobs, newest first, with filters and pagination (at most 0.5 s old)",
    response_model=JobPage,
)
async def list_jobs(
    state: StateDep,
    _who: Viewer,
    *,
    status: Status | None = None,
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[dt.datetime | None, Query(description="created at or after (UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    def page() -> JobPage:
        items, total = state.store.jobs.page(
            status=status, pipeline=pipeline, since=_utc(since), limit=limit, offset=offset
        )
        return JobPage(
            items=[JobModel.of(j) for j in items], total=total, limit=limit, offset=offset
        )

    return await state.snapshots.respond(("jobs", status, pipeline, since, limit, offset), page)


def _utc(at: dt.datetime | None) -> dt.datetime | None:
    """The store keeps naive UTC times."""
    if at is None or at.tzinfo is None:
        return at
    return at.astimezone(dt.UTC).replace(tzinfo=None)


@router.get(
    "/{job_id}",
    summary="One job with its progress, request and errors",
    responses=problems.responses(404),
)
def get_job(
    job_id: JobId,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("job.read", Role.VIEWER, "job_id")],
) -> JobDetail:
    job = operations.find_job(state.store, job_id)
    entry.target = job.id
    return JobDetail.with_errors(job, state.store.jobs.errors(job.id))


@router.delete(
    "/{job_id}",
    summary="Cancel a queued or running job (operator)",
    responses=problems.responses(404, 409),
)
def cancel(
    job_id: JobId,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("job.cancel", Role.OPERATOR, "job_id")],
) -> JobCancelled:
    job = operations.cancel_job(state.settings, state.store, job_id, client=state.job_client())
    entry.target = job.id
    return JobCancelled(id=job.id, status=job.status)


@router.post(
    "/{job_id}/retry",
    status_code=202,
    summary="Queue an ended job again as a new job (operator)",
    responses=problems.responses(404, 409, 503),
)
def retry(
    job_id: JobId,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("job.retry", Role.OPERATOR, "job_id")],
) -> RetryQueued:
    new_id = operations.retry_job(state.settings, state.store, job_id, client=state.job_client())
    entry.outcome = "queued"
    entry.detail = {"new_job_id": new_id}
    return RetryQueued(job_id=new_id)
