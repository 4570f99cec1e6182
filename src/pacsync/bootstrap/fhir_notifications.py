"""Inbound FHIR notifications wired: where they come from, how they prove it, and the
sync jobs they queue.

A FHIR connection listens once ``pacsync fhir notifications add CONNECTION`` gave it a
*notification source*: an inbound webhook source (:mod:`pacsync.db.webhook_sources`,
its secret sealed) named ``fhir:CONNECTION``, taken by
``POST /api/v1/fhir/notify/CONNECTION`` only (the generic receive route's names have
no colon).  A notification proves itself in either of two ways:

- ``Authorization: Bearer <secret>``: what a FHIR Subscription rest-hook can send (a
  server sends the headers listed in ``Subscription.channel.header`` as they are, and
  signs nothing);
- a signature by the source's scheme (Standard Webhooks, GitHub, HMAC-SHA512), as a
  vendor's webhook sends it; its message id is remembered and a replay refused.

Each patient a notification names queues a PATIENT_SYNC (:func:`queue_patient`), a
resource whose patient is not known yet one that finds it when it runs, a
notification naming nothing an incremental sync of the connection.  A job queued for
the same patient (or resource, or connection) and not yet started takes the
notification instead of a new job (its key: ``fhir-notify:CONNECTION:WHAT:n``, n
counting the jobs before it), so a storm of notifications queues one job per patient;
one that arrives while that job runs queues the next (it may have read too early).
The syncs a notification starts use the options kept with the connection
(``sync``: direction, strategy, fallback, rules, types; default: both ways, manual).
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pacsync import bootstrap
from pacsync.bootstrap import fhir, fhir_sync
from pacsync.bootstrap import jobs as job_layer
from pacsync.config import Settings
from pacsync.connectors.dbos import engine as dbos
from pacsync.db.fhir_resources import FhirResourceStore
from pacsync.db.webhook_sources import SourceView
from pacsync.domain.fhir_notifications import Notification, patient_of, reference_parts
from pacsync.errors import AuthenticationFailed, InvalidRequest, NotFound, PacsyncError
from pacsync.jobs.request import JobRequest

log = logging.getLogger("pacsync.fhir")
SOURCE_PREFIX = "fhir:"
SYNC_OPTIONS = ("direction", "strategy", "fallback", "rules", "types")


def source_name(connection: str) -> str:
    return f"{SOURCE_PREFIX}{connection}"


def endpoint_path(connection: str) -> str:
    return f"/api/v1/fhir/notify/{connection}"


def enable(
    store: bootstrap.Store,
    connection: str,
    *,
    scheme: str = "standard-webhooks",
    secret: str | None = None,
    sync: Mapping[str, Any] | None = None,
) -> tuple[SourceView, str | None]:
    """Give the connection its notification source (create or replace) and keep the
    options of the syncs notifications start; the secret when one was generated (shown
    this once)."""
    target = fhir.endpoint(store, connection)
    options = {k: v for k, v in dict(sync or {}).items() if k in SYNC_OPTIONS and v}
    fhir_sync.sync_request(connection, patient="check", **options)  # refuses bad options
    view = store.connections.get(connection)
    assert view is not None
    kept = {k: v for k, v in view.options.items() if k != "sync"}
    if options:
        kept["sync"] = options
    fhir.add_connection(store, target.name, target.base_url, kept)
    types = options.get("types")
    return store.webhook_sources.put_source(
        source_name(connection), scheme, secret, pipeline=source_name(connection),
        entities=list(types) if types else None,
    )  # fmt: skip


def disable(store: bootstrap.Store, connection: str) -> bool:
    """Stop taking notifications (the secret is forgotten); False when none were taken."""
    return store.webhook_sources.delete_source(source_name(connection))


def source(store: bootstrap.Store, connection: str) -> SourceView:
    found = store.webhook_sources.get_source(source_name(connection))
    if found is None:
        raise NotFound(
            f"FHIR connection '{connection}' takes no notifications",
            hint=f"Enable them: pacsync fhir notifications add {connection}.",
        )
    return found


def secret(store: bootstrap.Store, connection: str) -> str:
    source(store, connection)
    return store.webhook_sources.source_secret(source_name(connection))


def authenticate(
    store: bootstrap.Store, connection: str, headers: Mapping[str, str], body: bytes
) -> str:
    """How the notification proved itself (``bearer`` or ``signed``).  NotFound when the
    connection takes no notifications; AuthenticationFailed for a wrong or missing
    secret or signature; InvalidState for a signed message received before."""
    name = source(store, connection).source
    lower = {k.lower(): v for k, v in headers.items()}
    offered = lower.get("authorization", "")
    if offered[:7].lower() == "bearer ":
        expected = store.webhook_sources.source_secret(name)
        if hmac.compare_digest(offered[7:].strip().encode(), expected.encode()):
            return "bearer"
        raise AuthenticationFailed(
            "the notification's bearer secret is not the connection's",
            hint="Put the secret `pacsync fhir notifications add` printed in the "
            "Subscription's channel.header: 'Authorization: Bearer <secret>'.",
        )
    try:
        store.webhook_sources.accept(name, headers, body)
    except AuthenticationFailed as failed:
        raise AuthenticationFailed(
            f"the notification has no bearer secret and {failed.message}",
            hint="Send 'Authorization: Bearer <secret>' or sign it with the source's scheme.",
        ) from None
    return "signed"


@dataclass(frozen=True)
class Queued:
    """A job a notification asked for: what for (``Patient/id``, ``Type/id`` or the
    connection), and whether it is a new job (False: one already waiting took it)."""

    target: str
    job_id: str
    created: bool


def sync_options(store: bootstrap.Store, connection: str) -> dict[str, Any]:
    view = store.connections.get(connection)
    kept = (view.options if view is not None else {}).get("sync") or {}
    return {k: v for k, v in dict(kept).items() if k in SYNC_OPTIONS}


def queue(
    settings: Settings,
    store: bootstrap.Store,
    connection: str,
    notification: Notification,
    *,
    client: dbos.JobClient | None = None,
) -> list[Queued]:
    """The jobs the notification asks for, queued once each (see the module docstring)."""
    fhir.endpoint(store, connection)
    options = sync_options(store, connection)
    if not notification.names_records:
        if notification.kind != "ping":
            return []  # a handshake or heartbeat asks for nothing
        request = fhir_sync.sync_request(connection, trigger="webhook", **options)
        return [_once(settings, store, client, request, connection=connection, target=connection)]
    patients = list(notification.patients)
    foci: list[str] = []
    local = FhirResourceStore(store.engine)
    for focus in notification.foci:
        found = _local_patient(local, focus)
        if found is None:
            foci.append(focus)
        elif found not in patients:
            patients.append(found)
    queued = []
    for patient in patients:
        request = fhir_sync.sync_request(connection, patient=patient, trigger="webhook", **options)
        queued.append(
            _once(
                settings, store, client, request, connection=connection, target=f"Patient/{patient}"
            )
        )
    for focus in foci:
        request = fhir_sync.sync_request(connection, focus=focus, trigger="webhook", **options)
        queued.append(_once(settings, store, client, request, connection=connection, target=focus))
    return queued


def _local_patient(local: FhirResourceStore, focus: str) -> str | None:
    parts = reference_parts(focus)
    if parts is None:
        return None
    held = local.current(*parts)
    return patient_of(held) if held is not None else None


def _once(
    settings: Settings,
    store: bootstrap.Store,
    client: dbos.JobClient | None,
    request: JobRequest,
    *,
    connection: str,
    target: str,
) -> Queued:
    """Submit the job unless one for the same target is queued and not started."""
    base = f"fhir-notify:{connection}:{target}"
    n = _first_free(store, base)
    if n > 0:
        previous = job_layer.job_id_for(dataclasses.replace(request, key=f"{base}:{n - 1}"))
        if store.jobs.status_of(previous) == "queued":
            return Queued(target, previous, False)
    keyed = dataclasses.replace(request, key=f"{base}:{n}")
    try:
        job_id, created = job_layer.submit(settings, keyed, store=store, client=client)
    except PacsyncError:
        job_id = job_layer.job_id_for(keyed)
        if store.jobs.status_of(job_id) is None:
            raise
        return Queued(target, job_id, False)  # another notification made it meanwhile
    return Queued(target, job_id, created)


def _first_free(store: bootstrap.Store, base: str) -> int:
    """The first n whose job ``base:n`` does not exist (they are made in order: a
    galloping then binary search, a few lookups even after thousands of jobs)."""

    def exists(n: int) -> bool:
        return store.jobs.status_of(job_layer.job_id_for(_keyed(base, n))) is not None

    if not exists(0):
        return 0
    low, high = 0, 1
    while exists(high):
        low, high = high, high * 2
    while high - low > 1:  # exists(low), not exists(high)
        middle = (low + high) // 2
        if exists(middle):
            low = middle
        else:
            high = middle
    return high


def _keyed(base: str, n: int) -> JobRequest:
    return JobRequest(kind=fhir_sync.KIND, pipeline="-", key=f"{base}:{n}")


def describe(queued: Sequence[Queued]) -> list[dict[str, Any]]:
    return [{"target": q.target, "job_id": q.job_id, "created": q.created} for q in queued]


# -- Subscriptions on the server ------------------------------------------------------------

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
PAYLOADS = ("full-resource", "id-only", "empty")


def subscription(
    endpoint_url: str,
    bearer: str,
    *,
    criteria: str | None = None,
    topic: str | None = None,
    filters: Sequence[str] = (),
    payload: str = "full-resource",
) -> dict[str, Any]:
    """A rest-hook Subscription posting to ``endpoint_url`` with the bearer secret in its
    channel.header: R4 by ``criteria`` (``Patient``, ``Observation?patient=…``), or
    topic-based (R4 Subscriptions Backport) by ``topic`` with ``filters``.  ``payload``:
    full-resource, id-only or empty (an empty notification asks for an incremental sync)."""
    if (criteria is None) == (topic is None):
        raise InvalidRequest("a subscription needs either criteria or a topic")
    if payload not in PAYLOADS:
        raise InvalidRequest(
            f"unknown payload {payload!r}", hint=f"Use one of: {', '.join(PAYLOADS)}."
        )
    channel: dict[str, Any] = {
        "type": "rest-hook",
        "endpoint": endpoint_url,
        "header": [f"Authorization: Bearer {bearer}"],
    }
    made: dict[str, Any] = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "pacsync: sync the records of the patients concerned",
    }
    if topic is not None:
        made["meta"] = {"profile": [f"{BACKPORT}/backport-subscription"]}
        made["criteria"] = topic
        if filters:
            made["_criteria"] = {
                "extension": [
                    {"url": f"{BACKPORT}/backport-filter-criteria", "valueString": f}
                    for f in filters
                ]
            }
        channel["payload"] = "application/fhir+json"
        channel["_payload"] = {
            "extension": [{"url": f"{BACKPORT}/backport-payload-content", "valueCode": payload}]
        }
    else:
        made["criteria"] = criteria
        if payload != "empty":
            channel["payload"] = "application/fhir+json"
    made["channel"] = channel
    return made


def offers_subscriptions(capabilities: Mapping[str, Any]) -> bool:
    """Whether a CapabilityStatement lists Subscription with the create interaction."""
    for rest in capabilities.get("rest") or []:
        for resource in rest.get("resource") or []:
            if resource.get("type") == "Subscription":
                kinds = {i.get("code") for i in resource.get("interaction") or []}
                return not kinds or "create" in kinds
    return False


def subscribe(
    store: bootstrap.Store,
    connection: str,
    endpoint_url: str,
    **how: Any,
) -> dict[str, Any]:
    """Create the Subscription on the connection's server (see :func:`subscription`);
    the resource as the server kept it.  The connection must take notifications."""
    bearer = secret(store, connection)
    made = subscription(endpoint_url, bearer, **how)
    with fhir.client(store, connection) as client:
        if not offers_subscriptions(client.capabilities()):
            raise InvalidRequest(
                f"the server of '{connection}' offers no Subscription (CapabilityStatement)",
                hint="Ask the vendor for its notification webhooks, and point them to "
                f"{endpoint_path(connection)} with the notification secret.",
            )
        return client.create(made).resource
