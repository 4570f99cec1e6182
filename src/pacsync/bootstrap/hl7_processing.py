"""Processing kept HL7 v2 messages, wired: the message journal as inbox, the HL7
parser, and the FHIR resources they map to as sink.

It runs as ``hl7-process`` jobs on the message-processing queue, one feed at a
time; a worker serving that queue queues one when messages are waiting and none
is queued (:class:`ProcessTrigger`), and ``pacsync hl7 process`` runs it here."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from pacsync import bootstrap
from pacsync.bootstrap import hl7_routes
from pacsync.bootstrap.hl7_acks import AcknowledgingInbox
from pacsync.connectors.fhir.from_hl7 import fhir_resources
from pacsync.connectors.hl7.records import parse_message, patient_of
from pacsync.connectors.sql.errors import translated
from pacsync.db.deliveries import DeliveryStore
from pacsync.db.fhir_resources import FhirResourceStore
from pacsync.db.messages import MessageStore, hl7_messages
from pacsync.domain.clinical import ParsedMessage
from pacsync.domain.messaging import Route
from pacsync.errors import PacsyncError
from pacsync.jobs.messages import ProcessCounts, process_pending
from pacsync.jobs.queues import MESSAGES
from pacsync.jobs.request import JobRequest
from pacsync.ports import JobContext

log = logging.getLogger("pacsync.hl7.processing")

KIND = "hl7-process"
ALL_FEEDS = "*"


class FhirSink:
    """Writes the FHIR R4 resources of processed messages into the store and, in the
    same transaction, queues each message for the MLLP routes that take it."""

    def __init__(self, store: FhirResourceStore, routes: Sequence[Route] = ()) -> None:
        self.store = store
        self.routes = list(routes)
        self.deliveries = DeliveryStore(store.engine)

    def apply(self, messages: Sequence[tuple[int, ParsedMessage]]) -> int:
        resources = [(mid, r) for mid, parsed in messages for r in fhir_resources(parsed)]
        with translated("store"), self.store.engine.begin() as conn:
            written = self.store.put(conn, resources)
            if self.routes and messages:
                feeds = _feeds(conn, [mid for mid, _ in messages])
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                self.deliveries.enqueue(
                    conn,
                    [
                        (route.name, mid)
                        for mid, parsed in messages
                        for route in self.routes
                        if route.takes(parsed.trigger, feeds.get(mid, ""))
                    ],
                    now,
                )
            return written


def _feeds(conn: Any, ids: list[int]) -> dict[int, str]:
    table = hl7_messages
    rows = conn.execute(select(table.c.id, table.c.feed).where(table.c.id.in_(ids)))
    return {int(i): str(f) for i, f in rows}


def process(
    store: bootstrap.Store,
    *,
    feed: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[ProcessCounts], None] = lambda counts: None,
) -> ProcessCounts:
    """Process every waiting message (of ``feed``) now, in this process."""
    routes = hl7_routes.routes(store)
    return process_pending(
        AcknowledgingInbox(MessageStore(store.engine), routes),
        parse_message,
        FhirSink(FhirResourceStore(store.engine), [r for r in routes if not r.acks]),
        feed=feed,
        should_stop=should_stop,
        progress=progress,
        identify=patient_of,
    )


def process_request(feed: str | None, trigger: str = "manual") -> JobRequest:
    name = feed or ALL_FEEDS
    return JobRequest(kind=KIND, pipeline=name, trigger=trigger, queue=MESSAGES, partition=name)


class ProcessJobs:
    """The hl7-process job: marks it running, processes, records the counts."""

    def __init__(
        self,
        store: bootstrap.Store,
        executor_id: str,
        *,
        stopping: threading.Event | None = None,
    ) -> None:
        self.store, self.executor_id = store, executor_id
        self.stopping = stopping or threading.Event()

    def __call__(self, ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
        asked = JobRequest.from_dict(request)
        return dict(ctx.step("process", self.run, ctx.job_id, asked.pipeline))

    def run(self, job_id: str, feed: str) -> dict[str, Any]:
        jobs = self.store.jobs
        jobs.start(job_id, self.executor_id)
        last = [0.0]

        def progress(counts: ProcessCounts) -> None:
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                jobs.progress(job_id, {"messages": _shown(counts)})

        def should_stop() -> bool:
            return self.stopping.is_set() or jobs.status_of(job_id) == "cancelled"

        try:
            counts = process(
                self.store,
                feed=None if feed == ALL_FEEDS else feed,
                should_stop=should_stop,
                progress=progress,
            )
        except PacsyncError as failed:
            jobs.finish(job_id, "failed", {}, failed)
            return {"status": "failed", "error": failed.as_dict()}
        jobs.finish(job_id, "succeeded", {"messages": _shown(counts)})
        return {"status": "succeeded", **counts.as_dict()}


def _shown(counts: ProcessCounts) -> dict[str, int]:
    """Counts as ``pacsync jobs`` shows an entity's: read, written, dead-lettered."""
    done = counts.processed + counts.failed
    return {"read": done, "inserted": counts.records, "dead_lettered": counts.failed,
            **counts.as_dict()}  # fmt: skip


class ProcessTrigger(threading.Thread):
    """In a worker: queue processing soon after messages arrive (at most one job waits)."""

    def __init__(
        self,
        store: bootstrap.Store,
        submit: Callable[[JobRequest], tuple[str, bool]],
        *,
        every_s: float = 1.0,
    ) -> None:
        super().__init__(name="pacsync-hl7-trigger", daemon=True)
        self.store, self.submit, self.every_s = store, submit, every_s
        self.messages = MessageStore(store.engine)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.every_s):
            try:
                self.tick()
            except Exception as exc:  # the next tick tries again
                log.warning("queueing message processing failed: %s", exc)

    def tick(self) -> bool:
        """Queue processing when messages wait and no processing job is queued or running,
        and a delivery for each route with messages waiting; whether anything was queued."""
        queued = False
        for route in hl7_routes.routes_to_deliver(self.store):
            self.submit(hl7_routes.deliver_request(route, trigger="message"))
            queued = True
        if not self.messages.pending(None, 1):
            return queued
        if any(job.kind == KIND for job in self.store.jobs.active(ALL_FEEDS)):
            return queued
        self.submit(process_request(None, trigger="message"))
        return True

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=5)


__all__ = ["KIND", "FhirSink", "ProcessJobs", "ProcessTrigger", "process", "process_request"]
