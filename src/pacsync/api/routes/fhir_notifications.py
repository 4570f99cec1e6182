"""``/fhir/notify/{connection}``: where a FHIR server's Subscription (rest-hook) or an
EHR's webhook tells pacsync that records changed; each patient named gets a
PATIENT_SYNC job (see :mod:`pacsync.bootstrap.fhir_notifications`).

No API key: the connection's notification secret authenticates the sender, as
``Authorization: Bearer <secret>`` (what ``Subscription.channel.header`` carries) or a
signature by the source's scheme.  A refused notification writes nothing and costs
its sender's address a rate-limit token; an accepted one is audited as
``fhir-notify:<connection>``.  Shapes understood: an empty body (R4 rest-hook without
payload: an incremental sync), the resource (POSTed, or PUT to ``…/{type}/{id}``), a
notification Bundle (R4 backport, R4B, R5; handshakes and heartbeats queue nothing),
any Bundle of resources, or a vendor's JSON naming ``patient`` or ``resource``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from pacsync.api import problems
from pacsync.api.deps import AuditEntry, StateDep, client_address, record_audit, refusal
from pacsync.api.schemas import Model
from pacsync.api.schemas_admin import CONNECTION_NAME
from pacsync.api.state import ApiState
from pacsync.bootstrap import fhir_notifications as notifications
from pacsync.domain.fhir_notifications import read_notification, reference_parts
from pacsync.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    PacsyncError,
)

log = logging.getLogger("pacsync.api")
router = APIRouter(prefix="/fhir", tags=["fhir"])
ConnectionName = Annotated[str, Path(pattern=CONNECTION_NAME, examples=["epic"])]
UNVERIFIED = "unverified"
BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "description": "Empty, a FHIR resource or Bundle, or a vendor's JSON (as sent).",
        "content": {"application/fhir+json": {"schema": {}}, "application/json": {"schema": {}}},
    }
}


ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "a handshake or heartbeat: nothing queued"},
    **problems.responses(400, 401, 404, 409, 413, 422, 429, 503),
}


def _notify_audit(request: Request, state: StateDep) -> Iterator[AuditEntry]:
    """The audit record of a notification, written only once its sender proved itself."""
    connection = request.path_params.get("connection")
    entry = AuditEntry("fhir.notify", connection, f"fhir-notify:{connection}", outcome=UNVERIFIED)
    try:
        yield entry
    except PacsyncError as error:
        if entry.outcome != UNVERIFIED:
            record_audit(state, request, entry, error.code)
        raise
    if entry.outcome != UNVERIFIED:
        record_audit(state, request, entry, entry.outcome)


_notify_audit.audit_action = "fhir.notify"  # type: ignore[attr-defined]  # found by tests
Received = Annotated[AuditEntry, Depends(_notify_audit, scope="function")]


class QueuedJob(Model):
    target: str = Field(examples=["Patient/123"])
    job_id: str
    created: bool = Field(description="false when a job still waiting took the notification")


class NotificationAccepted(Model):
    connection: str
    kind: str = Field(examples=["event", "ping", "handshake", "heartbeat"])
    jobs: list[QueuedJob]


@router.post(
    "/notify/{connection}",
    status_code=202,
    summary="Receive a FHIR notification: queues a sync of each patient named (no API key)",
    openapi_extra=BODY,
    responses=ANSWERS,
)
async def notify(
    connection: ConnectionName,
    request: Request,
    response: Response,
    state: StateDep,
    entry: Received,
) -> NotificationAccepted:
    return await _received(connection, None, request, response, state, entry)


@router.put(
    "/notify/{connection}/{resource_type}/{resource_id}",
    status_code=202,
    operation_id="fhir_notify_resource_put",
    summary="Receive an R4 rest-hook notification PUT to endpoint/Type/id (no API key)",
    openapi_extra=BODY,
    responses=ANSWERS,
)
@router.post(
    "/notify/{connection}/{resource_type}/{resource_id}",
    status_code=202,
    operation_id="fhir_notify_resource_post",
    summary="Receive a notification about one resource (no API key)",
    openapi_extra=BODY,
    responses=ANSWERS,
)
async def notify_resource(  # noqa: PLR0917 -- the path's parts
    connection: ConnectionName,
    resource_type: Annotated[str, Path(max_length=64, description="checked once authenticated")],
    resource_id: Annotated[str, Path(max_length=64)],
    request: Request,
    response: Response,
    state: StateDep,
    entry: Received,
) -> NotificationAccepted:
    reference = f"{resource_type}/{resource_id}"
    return await _received(connection, reference, request, response, state, entry)


@dataclass(frozen=True)
class _Arrived:
    connection: str
    path_reference: str | None
    headers: dict[str, str]
    body: bytes
    address: str | None


async def _received(  # noqa: PLR0917 -- the route's parts, passed on
    connection: str,
    path_reference: str | None,
    request: Request,
    response: Response,
    state: ApiState,
    entry: AuditEntry,
) -> NotificationAccepted:
    arrived = _Arrived(
        connection, path_reference, dict(request.headers), await request.body(),
        client_address(request),
    )  # fmt: skip
    return await run_in_threadpool(_receive, state, arrived, response, entry)


def _receive(
    state: ApiState, arrived: _Arrived, response: Response, entry: AuditEntry
) -> NotificationAccepted:
    store, connection = state.store, arrived.connection
    try:
        how = notifications.authenticate(store, connection, arrived.headers, arrived.body)
    except NotFound:  # which connections exist is no business of an unproven sender
        refused = AuthenticationFailed(
            f"no notification secret of '{connection}' matches",
            hint="Send the secret `pacsync fhir notifications add` printed.",
        )
        raise refusal(state, arrived.address, refused, 401, "notifications") from None
    except AuthenticationFailed as error:
        log.warning("FHIR notification for '%s' refused: %s", connection, error.message)
        raise refusal(state, arrived.address, error, 401, "notifications") from None
    entry.outcome = "accepted"
    entry.detail = {"auth": how}
    if arrived.path_reference is not None and reference_parts(arrived.path_reference) is None:
        raise InvalidRequest(
            f"{arrived.path_reference!r} is not a FHIR resource type and id",
            hint="The path ends in /Type/id, e.g. /Patient/123.",
        )
    notification = read_notification(arrived.body, arrived.path_reference)
    entry.detail["kind"] = notification.kind
    queued = notifications.queue(
        state.settings, store, connection, notification, client=state.job_client()
    )
    entry.detail["jobs"] = notifications.describe(queued)
    entry.outcome = "queued" if queued else "ok"
    if not queued:
        response.status_code = 200
    return NotificationAccepted(
        connection=connection,
        kind=notification.kind,
        jobs=[QueuedJob(target=q.target, job_id=q.job_id, created=q.created) for q in queued],
    )
