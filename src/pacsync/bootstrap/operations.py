"""What an operator does to jobs and dead letters, for the CLI and the API alike.

Each action checks that it applies (unknown id: :class:`NotFound`; wrong state:
:class:`InvalidState`) and goes through the job layer; auditing is the caller's.
"""

from __future__ import annotations

from typing import Any

from pacsync import bootstrap
from pacsync.bootstrap import hl7_processing
from pacsync.bootstrap import jobs as job_layer
from pacsync.config import Settings, find_pipeline
from pacsync.connectors.dbos.engine import JobClient
from pacsync.db import hl7_letters
from pacsync.db.jobs import ACTIVE, JobView
from pacsync.db.messages import MessageStore
from pacsync.errors import ConfigError, InvalidState, NotFound
from pacsync.jobs.queues import SYNC
from pacsync.jobs.request import JobRequest

RETRYABLE_LETTERS = ("open", "retry")


def sync_request(
    settings: Settings,
    pipeline: str,
    *,
    mode: str = "incremental",
    entities: list[str] | None = None,
    priority: int = 0,
    key: str = "",
    trigger: str = "manual",
) -> JobRequest:
    """A sync job's request for a pipeline by name or path; unknown entities are refused."""
    path, spec = bootstrap.pipeline(pipeline, settings)
    unknown = [e for e in entities or [] if e not in spec.entities]
    if unknown:
        raise ConfigError(
            f"pipeline '{spec.name}' has no entity '{unknown[0]}'",
            hint="Its entities are: " + ", ".join(spec.entities),
        )
    return JobRequest(
        kind="sync",
        pipeline=spec.name,
        path=str(path.resolve()),
        mode=mode,
        entities=list(entities or []),
        queue=SYNC,
        priority=priority,
        key=key,
        trigger=trigger,
    )


def find_job(store: bootstrap.Store, job_id: str) -> JobView:
    """The job with this id (or the only one starting with it)."""
    job = store.jobs.get(job_id)
    if job is None:
        raise NotFound(f"no job with id '{job_id}'", hint="List the jobs: `pacsync jobs`.")
    return job


def find_letter(store: bootstrap.Store, letter_id: int) -> dict[str, Any]:
    letter = store.dead_letters.get(letter_id)
    if letter is None:
        raise NotFound(
            f"no dead letter {letter_id}", hint="List them: `pacsync dead-letters list`."
        )
    return letter


def cancel_job(
    settings: Settings, store: bootstrap.Store, job_id: str, *, client: JobClient | None = None
) -> JobView:
    """Cancel a queued or running job; a running one stops after the batch in flight."""
    job = find_job(store, job_id)
    if not store.jobs.cancel(job.id):
        raise InvalidState(
            f"job {job.id[:8]} already ended ({job.status}); nothing to cancel",
            hint="Only queued and running jobs can be cancelled.",
        )
    job_layer.abandon(settings, job.id, client=client)
    return find_job(store, job.id)


def retry_job(
    settings: Settings, store: bootstrap.Store, job_id: str, *, client: JobClient | None = None
) -> str:
    """Queue an ended job again as a new job with its request; the new job's id.  A job
    parked as a dead letter (it failed for good) has its letter marked retried."""
    job = find_job(store, job_id)
    if job.status in ACTIVE or job.request is None:
        raise InvalidState(
            f"job {job.id[:8]} is {job.status}; only ended jobs can be retried",
            hint="Wait for it to end, or cancel it first.",
        )
    request = JobRequest.from_dict({**job.request, "trigger": "retry", "key": ""})
    new_id, _ = job_layer.submit(settings, request, store=store, client=client)
    letter = store.dead_letters.parked_job(job.id)
    if letter is not None:
        store.dead_letters.set_status(letter["id"], "retried", "retried")
    return new_id


def retry_dead_letter(
    settings: Settings, store: bootstrap.Store, letter_id: int, *, client: JobClient | None = None
) -> str:
    """Try a dead letter again; the id of the job queued for it.  A parked job is queued
    again with its request; a parked record is read again by a run of its entity; an
    HL7 message is put back in line and its feed processed."""
    letter = find_letter(store, letter_id)
    if letter["status"] not in RETRYABLE_LETTERS:
        raise InvalidState(
            f"cannot retry dead letter {letter_id}: it is {letter['status']}",
            hint="Only open dead letters can be retried.",
        )
    if letter["kind"] == "job":
        request = JobRequest.from_dict({**letter["payload"], "trigger": "retry", "key": ""})
        store.dead_letters.set_status(letter_id, "retried", "retried")
    elif letter["kind"] == hl7_letters.KIND:  # the message back in line, and processed
        feed = str(letter["payload"]["feed"])
        MessageStore(store.engine).reprocess([int(letter["record_key"])])
        store.dead_letters.set_status(letter_id, "retry", "retry requested")
        request = hl7_processing.process_request(feed, trigger="retry")
    else:
        store.dead_letters.set_status(letter_id, "retry", "retry requested")
        path = find_pipeline(letter["pipeline"], settings)
        request = JobRequest(
            kind="sync",
            pipeline=letter["pipeline"],
            path=str(path.resolve()),
            entities=[letter["entity"]],
            trigger="retry",
        )
    job_id, _ = job_layer.submit(settings, request, store=store, client=client)
    return job_id


def discard_dead_letter(store: bootstrap.Store, letter_id: int) -> None:
    """Mark a dead letter discarded; it stays in the store for the audit."""
    letter = find_letter(store, letter_id)
    if letter["status"] == "discarded":
        raise InvalidState(f"dead letter {letter_id} is already discarded")
    store.dead_letters.set_status(letter_id, "discarded", "discarded")
