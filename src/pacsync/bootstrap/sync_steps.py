"""The steps of a sync job on real connections and the store (see pacsync.jobs.sync_job).

A pipeline reads a SQL source, or the drop folders of a ``file:`` connection
(its entities are loaded by :mod:`pacsync.sync.drops`)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pacsync import bootstrap
from pacsync.bootstrap.events import AnnouncedDeadLetters, EventSink
from pacsync.config import Settings
from pacsync.connectors.files.drops import FolderDrops
from pacsync.connectors.hl7.destination import MllpDestination
from pacsync.connectors.sql.destination import SqlDestination
from pacsync.connectors.sql.source import SqlSource
from pacsync.db.audit import local_actor
from pacsync.db.jobs import JobView
from pacsync.db.resource_source import ResourceSource
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import CircuitOpen, PacsyncError
from pacsync.jobs.outcome import error_from_dict, error_to_dict
from pacsync.jobs.request import JobRequest
from pacsync.ports import ProgressSink
from pacsync.sync.drops import DropRun, refused_files, run_drop_entity
from pacsync.sync.entity import Mode
from pacsync.sync.pipeline import (
    NullProgress,
    RunContext,
    RunResult,
    run_entity,
    selected_entities,
)

log = logging.getLogger("pacsync.worker")
BUSY_AFTER_S = 120.0  # a running job of the same pipeline without news for longer is stale
ENDED_EVENTS = {"succeeded": "job.completed", "failed": "job.failed", "interrupted": "job.failed"}


@dataclass
class _Open:
    spec: PipelineSpec
    source: SqlSource | ResourceSource | None  # None: the pipeline reads drop folders
    destination: SqlDestination | MllpDestination
    connections: tuple[str, str]  # the source's and the destination's, fallbacks applied
    folder: FolderDrops | None = None
    refused: list[str] = field(default_factory=list)  # dropped files refused by this job


class SqlSyncSteps:
    """A :class:`pacsync.ports.SyncJobSteps` for SQL pipelines, shared by a process's jobs."""

    def __init__(
        self,
        settings: Settings,
        store: bootstrap.Store,
        *,
        executor_id: str,
        progress: Callable[[], ProgressSink] = NullProgress,
        stopping: threading.Event | None = None,
        on_retry: Callable[[dict[str, Any], int, float], None] = lambda error, n, delay: None,
        events: EventSink | None = None,
    ) -> None:
        self.settings, self.store, self.executor_id = settings, store, executor_id
        self.events = events or EventSink(settings, store)
        self.dead_letters = AnnouncedDeadLetters(store.dead_letters, self.events)
        self.on_retry = on_retry
        self.breaker = bootstrap.breaker(settings, store.engine)
        self.progress = progress
        self.stopping = stopping or threading.Event()
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()

    # -- steps ----------------------------------------------------------------------------------

    def start(self, job_id: str, request: dict[str, Any]) -> dict[str, Any]:
        asked = JobRequest.from_dict(request)
        _, spec = bootstrap.pipeline(asked.locator, self.settings)
        busy = self._running_elsewhere(spec.name, job_id)
        if busy:
            return {"busy": busy}
        self.store.jobs.start(job_id, self.executor_id)
        started = {"job_id": job_id, "mode": asked.mode, "entities": list(asked.entities)}
        self.events.emit("job.started", {**started, "trigger": asked.trigger}, spec.name)
        return {
            "entities": selected_entities(spec, asked.entities or None),
            "retry": {"attempts": spec.retry.attempts, "backoff_s": spec.retry.backoff_s},
            "deadline": time.time() + spec.timeout if spec.timeout else None,
        }

    def run_entity(
        self, job_id: str, request: dict[str, Any], entity: str, progress: dict[str, Any]
    ) -> dict[str, Any]:
        asked = JobRequest.from_dict(request)
        opened = self._opened(job_id, asked.locator)
        try:
            for name in opened.connections:
                self.breaker.before_call(name)
        except CircuitOpen as refused:
            self._close(job_id)  # the next attempt picks its endpoints again
            return {"progress": progress, "error": error_to_dict(refused)}
        result = RunResult.resumed(job_id, progress)
        mode: Mode = "full" if asked.mode == "full" else "incremental"
        if opened.source is None:
            assert opened.folder is not None
            drops = DropRun(
                opened.spec,
                job_id,
                opened.folder,
                opened.destination,
                self.dead_letters,
                self.store.jobs,
                self.progress(),
                should_stop=self._stop_check(job_id),
                deadline=request.get("deadline"),
                refused=opened.refused,
            )
            run_drop_entity(drops, result, entity, mode)
            last = selected_entities(opened.spec, asked.entities or None)[-1] == entity
            if last and opened.refused and result.error is None:  # the job says so, at its end
                result.status, result.failed_entity = "failed", entity
                result.error = refused_files(opened.refused)
            return self._entity_done(job_id, opened, result)
        ctx = RunContext(
            opened.spec,
            job_id,
            opened.source,
            opened.destination,
            self.dead_letters,
            self.store.jobs,
            self.progress(),
            should_stop=self._stop_check(job_id),
            runner=bootstrap.ProcessPartitionRunner(self.settings),
            deadline=request.get("deadline"),
            bulk=bootstrap.bulk_load(opened.source, opened.destination),
        )
        run_entity(ctx, result, entity, mode)
        return self._entity_done(job_id, opened, result)

    def _entity_done(self, job_id: str, opened: _Open, result: RunResult) -> dict[str, Any]:
        self._record_health(opened, result.error)
        if result.error is not None and result.error.transient:
            self._close(job_id)
        return {"progress": result.progress(), "error": error_to_dict(result.error)}

    def _record_health(self, opened: _Open, error: PacsyncError | None) -> None:
        """A connection's circuit counts the transient failures that name it."""
        for name in opened.connections:
            if error is not None and error.connection == name:
                self.breaker.failed(name, error)
            else:
                self.breaker.succeeded(name)

    def note_retry(self, job_id: str, error: dict[str, Any], attempt: int, delay: float) -> None:
        self.on_retry(error, attempt, delay)
        self.store.audit.record(
            actor=self.executor_id,
            action="job.retry",
            target=job_id,
            outcome="scheduled",
            detail={"attempt": attempt, "delay_s": round(delay, 2), "error": error},
        )

    def finish(self, job_id: str, outcome: dict[str, Any]) -> None:
        error = outcome["error"]
        self.store.jobs.finish(
            job_id,
            outcome["status"],
            outcome["progress"],
            error_from_dict(error),
            outcome["entity"],
            attempts=outcome["attempts"],
        )
        self._close(job_id)
        job = self.store.jobs.get(job_id)
        self.store.audit.record(
            actor=local_actor() if job and job.trigger == "manual" else self.executor_id,
            action="pipeline.run",
            target=job.pipeline if job else job_id,
            outcome=outcome["status"],
            detail={"job_id": job_id, "error_code": error["code"] if error else None},
        )
        self._announce_end(job_id, outcome, job)

    def _announce_end(self, job_id: str, outcome: dict[str, Any], job: JobView | None) -> None:
        """job.completed for a job that succeeded, job.failed for one that failed or was
        interrupted; a cancelled job is not announced."""
        status = job.status if job else outcome["status"]
        event = ENDED_EVENTS.get(status)
        if event is None:
            return
        data = {
            "job_id": job_id,
            "status": status,
            "attempts": outcome["attempts"],
            "entities": outcome["progress"].get("entities", {}),
            "error": outcome["error"],
        }
        self.events.emit(event, data, job.pipeline if job else None)

    def park(
        self,
        job_id: str,
        request: dict[str, Any],
        error: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> None:
        self.store.dead_letters.park_job(job_id, request, error, history)
        data = {"kind": "job", "job_id": job_id, "error": error}
        self.events.emit("dead_letter.created", data, request.get("pipeline") or None)

    # -- internals ------------------------------------------------------------------------------

    def _running_elsewhere(self, pipeline: str, job_id: str) -> str | None:
        cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=BUSY_AFTER_S)
        for job in self.store.jobs.active(pipeline):
            seen = job.heartbeat_at or job.started_at
            if job.id != job_id and job.status == "running" and seen and seen > cutoff:
                return job.id
        return None

    def _opened(self, job_id: str, pipeline: str) -> _Open:
        with self._lock:
            if job_id not in self._open:
                _, spec = bootstrap.pipeline(pipeline, self.settings)
                reading = self._endpoint(spec, spec.source.connection)
                writing = self._endpoint(spec, spec.destination.connection)
                files = spec.connections[reading].folder is not None
                self._open[job_id] = _Open(
                    spec,
                    None if files else bootstrap.source(spec, reading),
                    bootstrap.destination(spec, writing),
                    (reading, writing),
                    FolderDrops(spec) if files else None,
                )
            return self._open[job_id]

    def _endpoint(self, spec: PipelineSpec, name: str) -> str:
        """The connection itself, or its fallback while its circuit is open."""
        chosen = self.breaker.pick_endpoint(name, spec.connections[name].fallback)
        if chosen != name:
            log.warning("connection '%s' circuit open: using its fallback '%s'", name, chosen)
        return chosen

    def _close(self, job_id: str) -> None:
        with self._lock:
            opened = self._open.pop(job_id, None)
        if opened is not None:
            if opened.source is not None:
                opened.source.close()
            opened.destination.close()

    def _stop_check(self, job_id: str, every_s: float = 1.0) -> Callable[[], bool]:
        """Stop after the batch in flight when the job is cancelled or the process stops."""
        last = [0.0]

        def should_stop() -> bool:
            if self.stopping.is_set():
                return True
            now = time.monotonic()
            if now - last[0] < every_s:
                return False
            last[0] = now
            return self.store.jobs.status_of(job_id) == "cancelled"

        return should_stop
