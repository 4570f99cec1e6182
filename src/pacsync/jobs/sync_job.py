"""A sync job as a durable workflow: one recorded step per entity and attempt.

An entity step resumes from the entity's checkpoint, so a worker killed in the
middle of a batch loses nothing: the job runs again, the entities already done
return their recorded results and the interrupted one continues after its last
committed batch.  Transient failures are retried with backoff and jitter (the
waits are durable too); a job that fails for good is parked as a dead letter.
"""

from __future__ import annotations

import random
from typing import Any

from pacsync.errors import JobInterrupted, PacsyncError
from pacsync.jobs.outcome import error_from_dict
from pacsync.jobs.request import JobRequest
from pacsync.jobs.retry import RetryPolicy, decide
from pacsync.ports import JobContext, SyncJobSteps

BUSY_WAIT_S = 2.0


def run_sync_job(ctx: JobContext, steps: SyncJobSteps, request: JobRequest) -> dict[str, Any]:
    """Run the job to its end; the summary: status, progress, error, attempts."""
    job_id, asked = ctx.job_id, request.as_dict()
    waits = 0
    while "busy" in (plan := ctx.step(f"start #{waits}", steps.start, job_id, asked)):
        waits += 1  # another run of the pipeline holds it: queue behind it
        ctx.sleep(BUSY_WAIT_S)
    asked["deadline"] = plan.get("deadline")
    policy = RetryPolicy(attempts=plan["retry"]["attempts"], base_delay=plan["retry"]["backoff_s"])
    pending: list[str] = list(plan["entities"])
    progress: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    attempt = 1
    error: dict[str, Any] | None = None
    failed: str | None = None
    while True:
        error = failed = None
        while pending:
            entity = pending[0]
            try:
                out = ctx.step(
                    f"entity {entity} #{attempt}", steps.run_entity, job_id, asked, entity, progress
                )
            except PacsyncError as raised:  # the step itself could not run (store down, ...)
                out = {"progress": progress, "error": raised.as_dict()}
            progress = out["progress"]
            if out["error"] is not None:
                error, failed = out["error"], entity
                break
            pending.pop(0)
        if error is None:
            break
        history.append({"attempt": attempt, "entity": failed, **error})
        # jitter drawn from the job and attempt: a replay waits exactly as the first run did
        jitter = random.Random(f"{job_id}:{attempt}").random
        decision = decide(error_from_dict(error), attempt, policy, jitter)
        if not decision.retry:
            break
        ctx.step(f"retry #{attempt}", steps.note_retry, job_id, error, attempt, decision.delay)
        ctx.sleep(decision.delay)
        attempt += 1
    status = "succeeded"
    if error is not None:
        status = "interrupted" if error["code"] == JobInterrupted.code else "failed"
    outcome = {
        "status": status,
        "progress": progress,
        "error": error,
        "entity": failed,
        "attempts": attempt,
    }
    ctx.step("finish", steps.finish, job_id, outcome)
    if status == "failed" and error is not None:
        ctx.step("park", steps.park, job_id, asked, error, history)
    return outcome
