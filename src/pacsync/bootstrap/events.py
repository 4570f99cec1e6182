"""Events delivered to the webhooks subscribed to them.

:class:`EventSink` turns one event into one delivery per subscribed webhook, each
sent by its own job on the webhook-delivery queue (partitioned by webhook);
:class:`StoreDeliveryLog` is the store side those jobs read and write.  Emitting
never fails its caller: with the store or the job engine down the event is lost
with a warning in the log, and a delivery recorded but not queued is marked
failed, to be queued again with ``POST /webhooks/{id}/retry``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from pacsync import bootstrap
from pacsync.config import Settings
from pacsync.connectors.dbos import engine as dbos
from pacsync.domain.records import Rejected, key_text
from pacsync.errors import PacsyncError
from pacsync.jobs.webhooks import delivery_request
from pacsync.ports import DeadLetters, OutboundMessage
from pacsync.sync.dead_letter_relay import RelayedDeadLetters

log = logging.getLogger("pacsync.events")
KEYS_SHOWN = 100  # record keys listed in a dead_letter.created event


def envelope(event: str, data: dict[str, Any], pipeline: str | None) -> dict[str, Any]:
    """A message body as Standard Webhooks suggests: ``{type, timestamp, data}``."""
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    named = {"pipeline": pipeline} if pipeline else {}
    return {"type": event, "timestamp": stamp, "data": {**named, **data}}


class EventSink:
    """``emit(event, data, pipeline)``: a delivery and a job per subscribed webhook.

    ``client`` gives the job engine's client to enqueue with (the API's); without it
    the sink makes its own on first use (close it with :meth:`close`)."""

    def __init__(
        self,
        settings: Settings,
        store: bootstrap.Store,
        client: Callable[[], dbos.JobClient] | None = None,
    ) -> None:
        self.settings, self.store = settings, store
        self._shared = client
        self._own: dbos.JobClient | None = None
        self._lock = threading.Lock()

    def _client(self) -> dbos.JobClient:
        if self._shared is not None:
            return self._shared()
        with self._lock:
            if self._own is None:
                self._own = dbos.JobClient(dbos.system_url(self.settings.store_url))
            return self._own

    def emit(self, event: str, data: dict[str, Any], pipeline: str | None = None) -> list[int]:
        """Queue ``event`` for every active webhook that wants it; the delivery ids."""
        try:
            subscribers = self.store.webhooks.subscribers(event, pipeline)
        except PacsyncError as error:
            log.warning("event %s not delivered: %s", event, error)
            return []
        payload = envelope(event, data, pipeline)
        queued: list[int] = []
        for subscriber in subscribers:
            hook = subscriber.webhook.id
            try:
                delivery = self.store.webhooks.add_delivery(hook, event, payload)
                self.enqueue(delivery.id, hook)
            except PacsyncError as error:
                log.warning("event %s not queued for webhook %s: %s", event, hook, error)
                continue
            queued.append(delivery.id)
        return queued

    def enqueue(self, delivery_id: int, webhook_id: str, trigger: str = "event") -> str:
        """Queue the job that sends one delivery; its id.  When the job engine refuses,
        the delivery is marked failed and the error raised."""
        job_id = str(uuid.uuid4())
        try:
            self._client().enqueue(job_id, delivery_request(delivery_id, webhook_id, trigger))
        except PacsyncError as error:
            try:
                self.store.webhooks.mark_failed(delivery_id, f"not queued: {error}")
            except PacsyncError as also:
                log.warning("delivery %s stays pending: %s", delivery_id, also)
            raise
        return job_id

    def redeliver(self, webhook_id: str, limit: int = 1000) -> list[int]:
        """Queue again the failed deliveries of a webhook (newest ``limit``); their ids."""
        queued = []
        for delivery in self.store.webhooks.deliveries(webhook_id, limit, status="failed"):
            if self.store.webhooks.requeue(delivery.id):
                self.enqueue(delivery.id, webhook_id, "retry")
                queued.append(delivery.id)
        return queued

    def record_conflict(
        self, pipeline: str, entity: str, record_key: str, fields: list[dict[str, Any]]
    ) -> int:
        """Store an open conflict and emit ``conflict.detected``; its id."""
        conflict_id = self.store.conflicts.record(pipeline, entity, record_key, fields)
        data = {
            "conflict_id": conflict_id,
            "entity": entity,
            "record_key": record_key,
            "fields": [f["field"] for f in fields],
        }
        self.emit("conflict.detected", data, pipeline)
        return conflict_id

    def close(self) -> None:
        with self._lock:
            if self._own is not None:
                self._own.close()
                self._own = None


class AnnouncedDeadLetters(RelayedDeadLetters):
    """A :class:`pacsync.ports.DeadLetters` that emits ``dead_letter.created`` when records
    are newly parked."""

    def __init__(self, inner: DeadLetters, events: EventSink) -> None:
        super().__init__(inner)
        self.events = events

    def park(
        self, job_id: str | None, pipeline: str, entity: str, rejected: Sequence[Rejected]
    ) -> int:
        new = self.inner.park(job_id, pipeline, entity, rejected)
        if new:
            data = {
                "kind": "record",
                "job_id": job_id,
                "entity": entity,
                "count": new,
                "record_keys": [key_text(r.key) for r in rejected[:KEYS_SHOWN]],
                "rules": sorted({r.error.rule for r in rejected}),
            }
            self.events.emit("dead_letter.created", data, pipeline)
        return new


class StoreDeliveryLog:
    """A :class:`pacsync.ports.WebhookDeliveryLog` over the store's webhooks and dead
    letters.  A delivery to a disabled webhook is marked failed, not sent."""

    def __init__(self, store: bootstrap.Store) -> None:
        self.store = store

    def message(self, delivery_id: int) -> OutboundMessage | None:
        webhooks = self.store.webhooks
        delivery = webhooks.delivery(delivery_id)
        if delivery is None:
            return None
        hook = webhooks.get(delivery.webhook_id)
        if hook is None:
            return None
        if not hook.active:
            if delivery.status == "pending":
                webhooks.mark_failed(delivery_id, "the webhook is disabled")
            return None
        return OutboundMessage(
            delivery_id=delivery.id,
            message_id=delivery.message_id,
            url=hook.url,
            payload=delivery.payload,
            status=delivery.status,
            secret=webhooks.secret(hook.id),
        )

    def delivered(self, delivery_id: int, status: int, body: str) -> None:
        self.store.webhooks.mark_delivered(delivery_id, status, body)

    def failed(
        self,
        delivery_id: int,
        error: str,
        status: int | None,
        body: str | None,
        retry_at: dt.datetime | None,
    ) -> None:
        self.store.webhooks.mark_failed(
            delivery_id,
            error,
            response_status=status,
            response_body=body,
            next_attempt_at=retry_at,
        )

    def park(
        self,
        job_id: str,
        request: dict[str, Any],
        error: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> None:
        self.store.dead_letters.park_job(job_id, request, error, history)
