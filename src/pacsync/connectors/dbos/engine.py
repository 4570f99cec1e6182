"""DBOS as the job engine: launching a worker, enqueueing, cancelling, taking over.

Every process that runs jobs launches DBOS with a stable executor id; every
process that only manages jobs (enqueue, cancel, list) uses a client on the
same system database.  The application version is pinned, so a restarted or
upgraded worker still recovers and dequeues the work already stored.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dbos import DBOS, DBOSClient, DBOSConfig, EnqueueOptions, SetWorkflowID
from dbos import error as dbos_error

from pacsync.connectors.dbos.workflow import (
    SCHEDULED_NAME,
    WORKFLOW_NAME,
    job_workflow,
    scheduled_workflow,
)
from pacsync.errors import PacsyncError, StoreUnavailable
from pacsync.jobs.queues import QUEUES, QueueSpec
from pacsync.jobs.request import JobRequest
from pacsync.jobs.schedules import Schedule

APP_NAME = "pacsync"
APP_VERSION = "pacsync-jobs-1"  # bump only when the workflow's step sequence changes


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Engine failures as pacsync errors: an unreachable system database is transient."""
    try:
        yield
    except PacsyncError:
        raise
    except dbos_error.DBOSException as exc:
        raise PacsyncError(
            f"{where}: {exc}".splitlines()[0],
            hint="The job engine refused the request; check the job and queue settings.",
        ) from exc
    except Exception as exc:
        if type(exc).__module__.startswith(("sqlalchemy", "psycopg", "sqlite3")):
            raise StoreUnavailable(f"{where}: {exc}".splitlines()[0]) from exc
        raise


def system_url(store_url: str) -> str:
    """The job engine's database: the store's own PostgreSQL database (schema ``dbos``),
    or a SQLite file beside the embedded store."""
    if store_url.startswith("sqlite"):
        path = store_url.split("///", 1)[1]
        return "sqlite:///" + path.rsplit("/", 1)[0] + "/jobs.sqlite"
    scheme, rest = store_url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgresql") else store_url


_MIGRATED: set[str] = set()


def migrate(url: str) -> None:
    """Create or bring up to date the engine's tables, once per process and database."""
    if url in _MIGRATED:
        return
    with translated("job engine"):
        DBOS.migrate(url)
    _MIGRATED.add(url)


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: str
    status: str
    queue: str | None
    executor_id: str | None


class JobClient:
    """Enqueue, cancel, resume and list jobs from any process."""

    def __init__(self, url: str) -> None:
        migrate(url)
        with translated("job engine"):
            self.client = DBOSClient(system_database_url=url, application_name=APP_NAME)

    def enqueue(self, job_id: str, request: JobRequest, *, timeout_s: float | None = None) -> str:
        options: EnqueueOptions = {
            "workflow_name": WORKFLOW_NAME,
            "queue_name": request.queue,
            "workflow_id": job_id,
        }
        if request.priority > 0:  # 0 is the engine's own default: first
            options["priority"] = request.priority
        if QUEUES[request.queue].partition_by:
            options["queue_partition_key"] = request.partition_key
        if timeout_s:
            options["workflow_timeout"] = timeout_s
        with translated("job engine"):
            return str(self.client.enqueue(options, request.as_dict()).get_workflow_id())

    def status(self, job_id: str) -> str | None:
        with translated("job engine"):
            found = self.client.list_workflows(
                workflow_ids=[job_id], load_input=False, load_output=False
            )
        return found[0].status if found else None

    def result(self, job_id: str, poll_s: float = 0.2) -> Any:
        with translated("job engine"):
            return self.client.retrieve_workflow(job_id).get_result(polling_interval_sec=poll_s)

    def cancel(self, job_id: str) -> None:
        with translated("job engine"):
            self.client.cancel_workflow(job_id)

    def pending_on(self, executors: Sequence[str]) -> list[JobInfo]:
        with translated("job engine"):
            found = self.client.list_workflows(
                status="PENDING",
                executor_id=list(executors),
                load_input=False,
                load_output=False,
            )
        return [JobInfo(w.workflow_id, w.status, w.queue_name, w.executor_id) for w in found]

    def resume(self, job: JobInfo) -> None:
        """Run a job again from its recorded steps, on its own queue (and so its limits)."""
        with translated("job engine"):
            self.client.resume_workflow(job.id, queue_name=job.queue)

    def queue_depths(self) -> dict[str, dict[str, int]]:
        """Per queue: jobs waiting (ENQUEUED) and running (PENDING)."""
        with translated("job engine"):
            found = self.client.list_workflows(
                status=["ENQUEUED", "PENDING"],
                queue_name=list(QUEUES),
                load_input=False,
                load_output=False,
            )
        depths = {name: {"waiting": 0, "running": 0} for name in QUEUES}
        for w in found:
            if w.queue_name in depths:
                depths[w.queue_name]["waiting" if w.status == "ENQUEUED" else "running"] += 1
        return depths

    def schedules(self) -> dict[str, dict[str, Any]]:
        """Stored schedules by name: status and when each last fired."""
        with translated("job engine"):
            found = self.client.list_schedules(workflow_name=SCHEDULED_NAME)
        return {s["schedule_name"]: dict(s) for s in found}

    def close(self) -> None:
        self.client.destroy()


class Engine:
    """This process as a DBOS executor (a worker, or an in-process run)."""

    def __init__(
        self,
        url: str,
        executor_id: str,
        *,
        listen: Sequence[str] | None,
        notify_poll_s: float = 1.0,
    ) -> None:
        """``notify_poll_s``: how often the engine's listener thread polls; shutting down
        waits for its next wake-up, so a short-lived run wants it short."""
        self.url, self.executor_id, self.listen = url, executor_id, listen
        self.notify_poll_s = notify_poll_s

    def launch(self, concurrency: int | None = None, *, serve: bool = True) -> None:
        """Start the engine; ``serve`` also (re)registers the queues a worker serves."""
        logging.getLogger("dbos").setLevel(logging.WARNING)
        config: DBOSConfig = {
            "name": APP_NAME,
            "system_database_url": self.url,
            "application_version": APP_VERSION,
            "executor_id": self.executor_id,
            "use_listen_notify": False,
            "notification_listener_polling_interval_sec": self.notify_poll_s,
            "scheduler_polling_interval_sec": 5.0,
            "log_level": "WARNING",
            "run_migrations": True,
        }
        with translated("job engine"):
            DBOS(config=config)
            if self.listen is not None:
                DBOS.listen_queues(list(self.listen))
            DBOS.launch()
            for spec in QUEUES.values() if serve else ():
                register_queue(spec, concurrency)

    def run_here(self, job_id: str, request: JobRequest) -> dict[str, Any]:
        """Run a job in this process now, durably (not through a queue)."""
        with SetWorkflowID(job_id), translated("job engine"):
            handle = DBOS.start_workflow(job_workflow, request.as_dict())
        _wait_interruptibly(handle)
        result: dict[str, Any] = handle.get_result()
        return result

    def apply_schedules(self, schedules: Sequence[Schedule]) -> None:
        """Make the stored schedules exactly these (kept: when each last fired)."""
        wanted = {s.name for s in schedules}
        with translated("job engine"):
            for old in DBOS.list_schedules(workflow_name=SCHEDULED_NAME):
                if old["schedule_name"] not in wanted:
                    DBOS.delete_schedule(old["schedule_name"])
            if schedules:
                DBOS.apply_schedules(
                    [
                        {
                            "schedule_name": s.name,
                            "workflow_fn": scheduled_workflow,
                            "schedule": s.cron,
                            "cron_timezone": s.timezone,
                            "automatic_backfill": s.catch_up == "all",
                            "context": {"schedule": s.name},
                        }
                        for s in schedules
                    ]
                )

    def shutdown(self, grace_s: float = 10.0) -> None:
        DBOS.destroy(workflow_completion_timeout_sec=int(grace_s))


def register_queue(spec: QueueSpec, worker_concurrency: int | None) -> None:
    """Store the queue's settings.  The per-worker limit is stored with the queue (one
    value for every worker): a worker started without --concurrency keeps the stored one."""
    if worker_concurrency is None:
        stored = DBOS.retrieve_queue(spec.name)
        worker_concurrency = stored.worker_concurrency if stored is not None else None
    partition: dict[str, Any] = {}
    if spec.partition_by:
        partition["partition_concurrency"] = spec.partition_concurrency or spec.concurrency
        if spec.rate_limit:
            partition["partition_limiter"] = {
                "limit": spec.rate_limit.limit,
                "period": spec.rate_limit.period_s,
            }
    DBOS.register_queue(
        spec.name,
        global_concurrency=spec.concurrency,
        worker_concurrency=worker_concurrency,
        polling_interval_sec=spec.polling_s,
        on_conflict="always_update",
        **partition,
    )


def _wait_interruptibly(handle: Any, tick_s: float = 0.2) -> None:
    """Wait for a workflow started here in short ticks.

    A signal delivered while the process was stopped, or to one of the engine's
    threads, does not wake a main thread blocked without a timeout: its Python
    handler (Ctrl-C, SIGTERM) would only run once the whole job had ended."""
    future = getattr(handle, "future", None)
    if not isinstance(future, concurrent.futures.Future):
        return
    while True:
        try:
            future.exception(timeout=tick_s)
            return
        except concurrent.futures.TimeoutError:
            continue
        except concurrent.futures.CancelledError:
            return
