"""The job layer wired: creating, enqueueing and running jobs, and the worker loop."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from pacsync import bootstrap
from pacsync.bootstrap import (
    archives,
    dicom_retrieve,
    fhir_export,
    fhir_sync,
    hl7_processing,
    hl7_routes,
)
from pacsync.bootstrap.archive_triggers import ArchiveTriggers
from pacsync.bootstrap.drops import DropTriggers
from pacsync.bootstrap.events import EventSink, StoreDeliveryLog
from pacsync.bootstrap.sync_steps import SqlSyncSteps
from pacsync.config import Settings, list_pipelines, load_pipeline
from pacsync.connectors.dbos import engine as dbos
from pacsync.connectors.dbos.workflow import register_handler
from pacsync.connectors.http.webhooks import HttpWebhookSender
from pacsync.db.workers import WorkerRegistry
from pacsync.errors import PacsyncError
from pacsync.jobs import webhooks as webhook_jobs
from pacsync.jobs.outcome import error_from_dict
from pacsync.jobs.queues import ARCHIVES, MESSAGES, QUEUES, SYNC
from pacsync.jobs.request import JobRequest
from pacsync.jobs.schedules import Schedule, schedules_of
from pacsync.jobs.sync_job import run_sync_job
from pacsync.ports import JobContext, ProgressSink
from pacsync.security import signatures
from pacsync.sync.pipeline import NullProgress

log = logging.getLogger("pacsync.worker")
KEYS = uuid.UUID("6f1c8a52-7c1e-4b8e-9a55-0d4b1f7e2c10")  # namespace of idempotency keys


def default_executor_id() -> str:
    """Stable across restarts of the same worker slot on a host."""
    return f"{socket.gethostname()}-worker"


def job_id_for(request: JobRequest) -> str:
    """The same idempotency key always names the same job."""
    return str(uuid.uuid5(KEYS, request.key)) if request.key else str(uuid.uuid4())


def create_job(store: bootstrap.Store, request: JobRequest) -> tuple[str, bool]:
    """The job's row in the store; (id, created) — False when the key named a known job."""
    job_id = job_id_for(request)
    if request.key and store.jobs.get(job_id) is not None:
        return job_id, False
    store.jobs.create(
        kind=request.kind,
        pipeline=request.pipeline,
        mode=request.mode,
        entities=list(request.entities),
        trigger=request.trigger,
        job_id=job_id,
        queue=request.queue,
        request=request.as_dict(),
    )
    return job_id, True


def job_client(settings: Settings) -> dbos.JobClient:
    """A client of the job engine on the store's database (close it when done)."""
    return dbos.JobClient(dbos.system_url(settings.store_url))


def submit(
    settings: Settings,
    request: JobRequest,
    *,
    store: bootstrap.Store | None = None,
    client: dbos.JobClient | None = None,
) -> tuple[str, bool]:
    """Store and enqueue a job for the workers; enqueueing a known key again is a no-op.

    A long-lived caller (the API) passes its own ``store`` and ``client``."""
    store = store or bootstrap.store(settings)
    job_id, created = create_job(store, request)
    try:
        if client is not None:
            client.enqueue(job_id, request)
        else:
            own = job_client(settings)
            try:
                own.enqueue(job_id, request)
            finally:
                own.close()
    except PacsyncError as error:
        if created:  # never left queued with nobody to run it
            store.jobs.finish(job_id, "failed", {}, error)
        raise
    return job_id, created


def abandon(settings: Settings, job_id: str, *, client: dbos.JobClient | None = None) -> None:
    """Stop the engine from ever resuming a job (its process died; a new run replaces it)."""
    own = client or job_client(settings)
    try:
        if own.status(job_id) in ("PENDING", "ENQUEUED"):
            own.cancel(job_id)
    finally:
        if client is None:
            own.close()


def install_handlers(
    settings: Settings,
    store: bootstrap.Store,
    executor_id: str,
    *,
    progress: Callable[[], ProgressSink] = NullProgress,
    stopping: threading.Event | None = None,
    on_retry: Callable[[dict[str, Any], int, float], None] = lambda error, n, delay: None,
) -> SqlSyncSteps:
    steps = SqlSyncSteps(
        settings,
        store,
        executor_id=executor_id,
        progress=progress,
        stopping=stopping,
        on_retry=on_retry,
        events=EventSink(settings, store),
    )
    delivery = webhook_jobs.WebhookDelivery(
        StoreDeliveryLog(store),
        HttpWebhookSender(),
        signatures.standard_headers,
        retry=webhook_jobs.policy(settings.webhook_backoff_s),
    )

    def sync(ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
        return run_sync_job(ctx, steps, JobRequest.from_dict(request))

    def scheduled(ctx: JobContext, tick: dict[str, Any]) -> dict[str, Any]:
        found = {s.name: s for s in pipeline_schedules(settings)}.get(tick["schedule"])
        if found is None:  # its pipeline file changed since the schedule was applied
            log.warning("schedule %s is no longer defined; tick skipped", tick["schedule"])
            return {}
        at = dt.datetime.fromisoformat(tick["scheduled_at"])
        job_id, _ = ctx.step("submit", submit, settings, found.request(at))
        return {"job_id": job_id}

    def webhook(ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
        # a job queued through the jobs table (a parked delivery retried) is kept up to date
        listed = ctx.step("listed", _start_listed, store, ctx.job_id, executor_id)
        outcome = webhook_jobs.run_webhook_job(ctx, delivery, JobRequest.from_dict(request))
        if listed:
            ctx.step("finish", _finish_listed, store, ctx.job_id, outcome)
        return outcome

    register_handler(
        archives.KIND, archives.ScanJobs(settings, store, executor_id, stopping=stopping)
    )
    register_handler(dicom_retrieve.KIND, dicom_retrieve.RetrieveJobs(settings, store, executor_id))
    register_handler(fhir_export.KIND, fhir_export.ExportJobs(store, executor_id))
    register_handler(fhir_sync.KIND, fhir_sync.SyncJobs(store, executor_id, steps.events))
    processing = hl7_processing.ProcessJobs(store, executor_id, stopping=stopping)
    register_handler(hl7_processing.KIND, processing)
    register_handler(hl7_routes.JOB, hl7_routes.DeliverJobs(store, executor_id, stopping=stopping))
    register_handler("sync", sync)
    register_handler("schedule", scheduled)
    register_handler(webhook_jobs.KIND, webhook)
    return steps


def _start_listed(store: bootstrap.Store, job_id: str, executor_id: str) -> bool:
    """Mark a job running if the jobs table lists it; whether it does."""
    if store.jobs.get(job_id) is None:
        return False
    store.jobs.start(job_id, executor_id)
    return True


def _finish_listed(store: bootstrap.Store, job_id: str, outcome: dict[str, Any]) -> None:
    status = "succeeded" if outcome["outcome"] == "delivered" else "failed"
    error = error_from_dict(outcome["error"])
    store.jobs.finish(job_id, status, {}, error, attempts=outcome["attempts"])


def pipeline_schedules(settings: Settings) -> list[Schedule]:
    """The schedules of every pipeline in the pipeline folders (broken files are skipped)."""
    found: list[Schedule] = []
    for path in list_pipelines(settings):
        try:
            found += schedules_of(load_pipeline(path), str(path.resolve()))
        except PacsyncError as error:
            log.warning("%s: not scheduled: %s", path, error)
    return found


def last_fired(client: dbos.JobClient) -> dict[str, dt.datetime]:
    """When each stored schedule last fired (read before this worker's scheduler starts:
    it may fire a new tick at once and hide the ones missed during the downtime)."""
    fired = {}
    for name, stored in client.schedules().items():
        stamp = stored.get("last_fired_at")
        if stamp:
            fired[name] = dt.datetime.fromisoformat(str(stamp))
    return fired


def catch_up(
    settings: Settings, schedules: list[Schedule], fired: dict[str, dt.datetime]
) -> list[str]:
    """Submit the latest missed tick of schedules whose policy is ``latest``."""
    now = dt.datetime.now(dt.UTC)
    submitted = []
    for schedule in schedules:
        tick = schedule.missed(fired.get(schedule.name), now)
        if tick is not None:
            job_id, created = submit(settings, schedule.request(tick))
            if created:
                log.warning("%s missed %s; caught up as job %s", schedule.name, tick, job_id)
            submitted.append(job_id)
    return submitted


def run_here(
    settings: Settings,
    store: bootstrap.Store,
    job_id: str,
    request: JobRequest,
    *,
    progress: Callable[[], ProgressSink],
    stopping: threading.Event,
    on_retry: Callable[[dict[str, Any], int, float], None],
) -> dict[str, Any]:
    """Run one job in this process, durably, serving no queue (``pacsync run``)."""
    executor_id = f"cli-{socket.gethostname()}-{os.getpid()}"
    steps = install_handlers(
        settings, store, executor_id, progress=progress, stopping=stopping, on_retry=on_retry
    )
    registry = WorkerRegistry(store.engine)
    engine = dbos.Engine(
        dbos.system_url(settings.store_url), executor_id, listen=[], notify_poll_s=0.1
    )
    engine.launch(serve=False)
    registry.register(executor_id, [], None)
    beating = _Heartbeat(registry, executor_id)
    beating.start()
    try:
        return engine.run_here(job_id, request)
    finally:
        beating.stop()
        registry.stopped(executor_id)
        engine.shutdown(grace_s=0)
        steps.events.close()


class _Heartbeat(threading.Thread):
    def __init__(self, registry: WorkerRegistry, executor_id: str, every_s: float = 5.0) -> None:
        super().__init__(name="pacsync-heartbeat", daemon=True)
        self.registry, self.executor_id, self.every_s = registry, executor_id, every_s
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.every_s):
            try:
                self.registry.beat(self.executor_id)
            except Exception as exc:  # the store is down: keep working, beat again later
                log.warning("heartbeat failed: %s", exc)

    def stop(self) -> None:
        self.halt.set()


def take_over(
    registry: WorkerRegistry, client: dbos.JobClient, me: str, silent_for_s: float
) -> list[str]:
    """Resume, on their own queues, the jobs of executors that stopped heart-beating."""
    resumed: list[str] = []
    for executor in registry.claim_stale(me, silent_for_s):
        for job in client.pending_on([executor]):
            client.resume(job)
            resumed.append(job.id)
            log.warning("took over job %s from stopped executor %s", job.id, executor)
    return resumed


def run_worker(
    settings: Settings,
    *,
    executor_id: str,
    queues: Sequence[str] | None,
    concurrency: int | None,
    stop: threading.Event,
    heartbeat_s: float = 5.0,
    stale_after_s: float = 30.0,
    grace_s: float = 10.0,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``queues`` (default: all) until ``stop`` is set, then finish what it can within
    ``grace_s``; jobs still running resume from their checkpoints on the next start."""
    store = bootstrap.store(settings)
    steps = install_handlers(settings, store, executor_id)
    registry = WorkerRegistry(store.engine)
    url = dbos.system_url(settings.store_url)
    served = list(queues) if queues else list(QUEUES)
    engine = dbos.Engine(url, executor_id, listen=served)
    client = dbos.JobClient(url)
    fired = last_fired(client)
    engine.launch(concurrency)
    registry.register(executor_id, served, concurrency)
    schedules = pipeline_schedules(settings)
    engine.apply_schedules(schedules)
    catch_up(settings, schedules, fired)
    triggers = None
    if ARCHIVES in served:
        triggers = ArchiveTriggers(store, lambda request: submit(settings, request, store=store))
    if triggers is not None:
        triggers.start()
    drops = None
    if SYNC in served:  # files dropped for a pipeline queue its run
        drops = DropTriggers(settings, lambda request: submit(settings, request, store=store))
        drops.start()
    messages = None
    if MESSAGES in served:
        messages = hl7_processing.ProcessTrigger(
            store, lambda request: submit(settings, request, store=store)
        )
        messages.start()
    on_ready()
    beating = _Heartbeat(registry, executor_id, heartbeat_s)
    beating.start()
    try:
        while not stop.wait(min(heartbeat_s, stale_after_s / 2)):
            try:
                take_over(registry, client, executor_id, stale_after_s)
            except Exception as exc:
                log.warning("take-over pass failed: %s", exc)
    finally:
        beating.stop()
        if triggers is not None:
            triggers.stop()
        if drops is not None:
            drops.stop()
        if messages is not None:
            messages.stop()
        registry.stopped(executor_id)
        client.close()
        engine.shutdown(grace_s)
        steps.events.close()
