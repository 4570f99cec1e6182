"""``/webhooks``: outbound subscriptions and their deliveries (admin), inbound sources
(admin), and ``POST /webhooks/receive/{source}``, where senders post signed messages.

The receive route takes no bearer token: the message's signature (the source's
scheme and shared secret) authenticates it.  A message unsigned, badly signed,
more than 5 minutes off or seen before is refused and writes nothing; an
accepted one queues the source's pipeline and is audited as ``webhook:<source>``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from pacsync.api import problems
from pacsync.api.deps import (
    AUTHENTICATED,
    Admin,
    Audit,
    AuditEntry,
    StateDep,
    client_address,
    record_audit,
    refusal,
)
from pacsync.api.schemas import JobAccepted
from pacsync.api.schemas_admin import (
    SOURCE_NAME,
    WEBHOOK_ID,
    DeliveriesQueued,
    Delivery,
    Source,
    SourceDeleted,
    SourcePut,
    SourceSaved,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDeleted,
    WebhookDetail,
)
from pacsync.api.state import ApiState
from pacsync.bootstrap import jobs as job_layer
from pacsync.bootstrap import operations
from pacsync.bootstrap.events import EventSink
from pacsync.domain.access import Role
from pacsync.errors import AuthenticationFailed, NotFound, PacsyncError
from pacsync.jobs.request import JobRequest

log = logging.getLogger("pacsync.api")
router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=AUTHENTICATED)
WebhookId = Annotated[str, Path(pattern=WEBHOOK_ID, description="the webhook's id")]
SourceName = Annotated[str, Path(pattern=SOURCE_NAME, examples=["ehr"])]
RECENT = 20  # deliveries shown with a webhook
UNVERIFIED = "unverified"
INBOUND_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The message as the sender signed it, byte for byte.",
        "content": {"application/json": {"schema": {}}},
    }
}


def _missing(webhook_id: str) -> NotFound:
    return NotFound(f"no webhook '{webhook_id}'", hint="List them: GET /api/v1/webhooks.")


def _no_source(source: str) -> NotFound:
    return NotFound(
        f"no webhook source '{source}'", hint="List them: GET /api/v1/webhooks/sources."
    )


# -- inbound: the receiving route and its sources -------------------------------------------


def _inbound_audit(request: Request, state: StateDep) -> Iterator[AuditEntry]:
    """The audit record of an inbound message, written only once its signature verified."""
    source = request.path_params.get("source")
    entry = AuditEntry("webhook.receive", source, f"webhook:{source}", outcome=UNVERIFIED)

    def record(outcome: str) -> None:
        record_audit(state, request, entry, outcome)  # a POST: polled pages are read afresh

    try:
        yield entry
    except PacsyncError as error:
        if entry.outcome != UNVERIFIED:
            record(error.code)
        raise
    if entry.outcome != UNVERIFIED:
        record(entry.outcome)


_inbound_audit.audit_action = "webhook.receive"  # type: ignore[attr-defined]  # found by tests
Received = Annotated[AuditEntry, Depends(_inbound_audit, scope="function")]


@router.post(
    "/receive/{source}",
    status_code=202,
    summary="Receive a signed message: queues the source's pipeline (no bearer token)",
    openapi_extra=INBOUND_BODY,
    responses=problems.responses(401, 404, 409, 413, 422, 503),
)
async def receive(
    source: SourceName, request: Request, state: StateDep, entry: Received
) -> JobAccepted:
    body = await request.body()
    headers = dict(request.headers)
    address = client_address(request)
    return await run_in_threadpool(
        _receive, state, source, headers=headers, body=body, entry=entry, address=address
    )


def _receive(
    state: ApiState,
    source: str,
    *,
    headers: dict[str, str],
    body: bytes,
    entry: AuditEntry,
    address: str | None,
) -> JobAccepted:
    sources = state.store.webhook_sources
    found = sources.get_source(source)
    if found is None:
        raise refusal(state, address, _no_source(source), 404, "messages")
    request = _request(state, found.pipeline, found.mode, found.entities)
    try:
        _, message_id = sources.accept(source, headers, body)
    except AuthenticationFailed as error:
        log.warning("webhook from '%s' refused: %s", source, error.message)
        raise refusal(state, address, error, 401, "messages") from None
    entry.outcome = "queued"
    entry.detail = {"message_id": message_id[:200]}
    try:
        job_id, created = job_layer.submit(
            state.settings,
            dataclasses.replace(request, key=f"webhook:{source}:{message_id[:200]}"),
            store=state.store,
            client=state.job_client(),
        )
    except PacsyncError:
        sources.forget_receipt(source, message_id)  # the sender's retry is no replay
        raise
    entry.detail["job_id"] = job_id
    return JobAccepted(job_id=job_id, status="queued", created=created, queue=request.queue)


def _request(
    state: ApiState, pipeline: str | None, mode: str | None, entities: list[str] | None
) -> JobRequest:
    if not pipeline:
        raise NotFound("this webhook source runs no pipeline", hint="Configure its pipeline.")
    return operations.sync_request(
        state.settings,
        pipeline,
        mode=mode or "incremental",
        entities=list(entities or []),
        trigger="webhook",
    )


@router.get("/sources", summary="Inbound sources (never their secrets; admin)")
def list_sources(state: StateDep, _who: Admin) -> list[Source]:
    return [Source.of(s) for s in state.store.webhook_sources.list_sources()]


@router.get(
    "/sources/{source}",
    summary="One inbound source (admin)",
    responses=problems.responses(404),
)
def get_source(source: SourceName, state: StateDep, _who: Admin) -> Source:
    found = state.store.webhook_sources.get_source(source)
    if found is None:
        raise _no_source(source)
    return Source.of(found)


@router.put(
    "/sources/{source}",
    summary="Create or replace an inbound source: its scheme, secret and pipeline (admin)",
    responses={
        201: {"model": SourceSaved, "description": "a new source was created"},
        **problems.responses(400, 404, 422),
    },
)
def put_source(
    source: SourceName,
    body: SourcePut,
    response: Response,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("webhook_source.put", Role.ADMIN, "source")],
) -> SourceSaved:
    _request(state, body.pipeline, body.mode, body.entities)  # the pipeline and entities exist
    sources = state.store.webhook_sources
    created = sources.get_source(source) is None
    saved, generated = sources.put_source(
        source,
        body.scheme,
        body.secret,
        pipeline=body.pipeline,
        mode=body.mode,
        entities=body.entities,
    )
    secret = "given" if body.secret else "generated" if generated else "kept"
    entry.outcome = "created" if created else "replaced"
    entry.detail = {"scheme": body.scheme, "pipeline": body.pipeline, "secret": secret}
    response.status_code = 201 if created else 200
    return SourceSaved(**Source.of(saved).model_dump(), secret=generated)


@router.delete(
    "/sources/{source}",
    summary="Delete an inbound source (admin)",
    responses=problems.responses(404),
)
def delete_source(
    source: SourceName,
    state: StateDep,
    _entry: Annotated[AuditEntry, Audit("webhook_source.delete", Role.ADMIN, "source")],
) -> SourceDeleted:
    if not state.store.webhook_sources.delete_source(source):
        raise _no_source(source)
    return SourceDeleted(source=source)


# -- outbound webhooks ----------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    summary="Subscribe a URL to events; the signing secret is shown once (admin)",
    responses=problems.responses(400),
)
def create(
    body: WebhookCreate,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("webhook.create", Role.ADMIN)],
) -> WebhookCreated:
    view, secret = state.store.webhooks.create(
        body.url, body.events, body.pipelines, body.description
    )
    entry.target = view.id
    entry.detail = {"events": view.events, "pipelines": view.pipelines}
    return WebhookCreated(**Webhook.of(view).model_dump(), secret=secret)


@router.get("", summary="Every webhook (never its secret; admin)")
def list_webhooks(state: StateDep, _who: Admin) -> list[Webhook]:
    return [Webhook.of(w) for w in state.store.webhooks.list()]


@router.get(
    "/{webhook_id}",
    summary="One webhook with its recent deliveries (admin)",
    responses=problems.responses(404),
)
def get_webhook(webhook_id: WebhookId, state: StateDep, _who: Admin) -> WebhookDetail:
    found = state.store.webhooks.get(webhook_id)
    if found is None:
        raise _missing(webhook_id)
    recent = state.store.webhooks.deliveries(webhook_id, RECENT)
    return WebhookDetail(
        **Webhook.of(found).model_dump(), recent_deliveries=[Delivery.of(d) for d in recent]
    )


@router.delete(
    "/{webhook_id}",
    summary="Delete a webhook and its delivery log (admin)",
    responses=problems.responses(404),
)
def delete_webhook(
    webhook_id: WebhookId,
    state: StateDep,
    _entry: Annotated[AuditEntry, Audit("webhook.delete", Role.ADMIN, "webhook_id")],
) -> WebhookDeleted:
    if not state.store.webhooks.delete(webhook_id):
        raise _missing(webhook_id)
    return WebhookDeleted(id=webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    summary="A webhook's deliveries, newest first (admin)",
    responses=problems.responses(404),
)
def deliveries(
    webhook_id: WebhookId,
    state: StateDep,
    _who: Admin,
    *,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[Delivery]:
    if state.store.webhooks.get(webhook_id) is None:
        raise _missing(webhook_id)
    found = state.store.webhooks.deliveries(webhook_id, limit, status=status)
    return [Delivery.of(d) for d in found]


@router.post(
    "/{webhook_id}/retry",
    status_code=202,
    summary="Queue the failed deliveries of a webhook again (admin)",
    responses=problems.responses(404, 503),
)
def retry(
    webhook_id: WebhookId,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("webhook.retry", Role.ADMIN, "webhook_id")],
) -> DeliveriesQueued:
    if state.store.webhooks.get(webhook_id) is None:
        raise _missing(webhook_id)
    queued = EventSink(state.settings, state.store, client=state.job_client).redeliver(webhook_id)
    entry.outcome = "queued"
    entry.detail = {"deliveries": queued}
    return DeliveriesQueued(webhook_id=webhook_id, requeued=queued)
