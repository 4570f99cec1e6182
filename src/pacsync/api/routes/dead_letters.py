"""``/dead-letters``: records and jobs that could not be processed, kept whole.

They may hold patient data: listing and reading them is audited.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, StateDep
from pacsync.api.schemas import (
    MAX_OFFSET,
    DeadLetter,
    DeadLetterDetail,
    DeadLetterDiscarded,
    DeadLetterPage,
    RetryQueued,
)
from pacsync.bootstrap import operations
from pacsync.domain.access import Role

router = APIRouter(prefix="/dead-letters", tags=["dead letters"], responses=AUTHENTICATED)
LetterId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the dead letter's id")]
Status = Literal["open", "retry", "retried", "resolved", "discarded", "superseded", "all"]


@router.get("", summary="Dead letters with the rule that failed (no payloads)")
def list_letters(
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("dead_letter.list", Role.VIEWER)],
    *,
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
    status: Status = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DeadLetterPage:
    wanted = None if status == "all" else status
    letters = state.store.dead_letters
    items = letters.find(pipeline=pipeline, status=wanted, limit=limit, offset=offset)
    entry.detail = {"pipeline": pipeline, "status": status, "returned": len(items)}
    return DeadLetterPage(
        items=[DeadLetter.of(d) for d in items],
        total=letters.count(pipeline=pipeline, status=wanted),
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{letter_id}",
    summary="One dead letter: the whole record and its history",
    responses=problems.responses(404),
)
def get_letter(
    letter_id: LetterId,
    state: StateDep,
    _entry: Annotated[AuditEntry, Audit("dead_letter.read", Role.VIEWER, "letter_id")],
) -> DeadLetterDetail:
    return DeadLetterDetail.of(operations.find_letter(state.store, letter_id))


@router.post(
    "/{letter_id}/retry",
    status_code=202,
    summary="Try a dead letter again: queues a job for it (operator)",
    responses=problems.responses(404, 409, 503),
)
def retry(
    letter_id: LetterId,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("dead_letter.retry", Role.OPERATOR, "letter_id")],
) -> RetryQueued:
    job_id = operations.retry_dead_letter(
        state.settings, state.store, letter_id, client=state.job_client()
    )
    entry.outcome = "queued"
    entry.detail = {"job_id": job_id}
    return RetryQueued(job_id=job_id)


@router.post(
    "/{letter_id}/discard",
    summary="Discard a dead letter; it stays for the audit",
    responses=problems.responses(404, 409),
)
def discard(
    letter_id: LetterId,
    state: StateDep,
    _entry: Annotated[AuditEntry, Audit("dead_letter.discard", Role.OPERATOR, "letter_id")],
) -> DeadLetterDiscarded:
    operations.discard_dead_letter(state.store, letter_id)
    return DeadLetterDiscarded(id=letter_id)
