"""``pacsync status``: workers, queues, connection circuits and running jobs at a glance."""

from __future__ import annotations

import datetime as dt

from rich.table import Table

from pacsync import bootstrap
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.connectors.dbos import engine as dbos
from pacsync.db.workers import WorkerRegistry
from pacsync.jobs.queues import QUEUES


def _age(at: dt.datetime | None, now: dt.datetime) -> str:
    return "-" if at is None else f"{(now - at).total_seconds():,.0f} s ago"


@reports_errors
def status() -> None:
    """Workers and their heart-beats, queue depths, circuit states, running jobs."""
    settings = Settings()
    store = bootstrap.store(settings)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    workers = Table(title="workers")
    for column in ("id", "host", "pid", "state", "heart-beat", "queues", "taken over by"):
        workers.add_column(column)
    for w in WorkerRegistry(store.engine).all():
        workers.add_row(
            w.executor_id,
            w.host,
            str(w.pid),
            w.status,
            _age(w.heartbeat_at, now),
            ", ".join(w.queues) or "(in-process run)",
            w.taken_over_by or "",
        )
    console.print(workers)

    client = dbos.JobClient(dbos.system_url(settings.store_url))
    try:
        depths = client.queue_depths()
    finally:
        client.close()
    queues = Table(title="queues")
    for column in ("queue", "concurrency", "partitioned by", "waiting", "running"):
        queues.add_column(column)
    for name, spec in QUEUES.items():
        queues.add_row(
            name,
            str(spec.concurrency),
            spec.partition_by or "-",
            str(depths[name]["waiting"]),
            str(depths[name]["running"]),
        )
    console.print(queues)

    circuits = Table(title="connection circuits")
    for column in ("connection", "state", "failures", "opened", "last error"):
        circuits.add_column(column)
    for c in bootstrap.breaker(settings, store.engine).states():
        circuits.add_row(
            c.connection, c.state, str(c.failures), _age(c.opened_at, now), c.last_error or ""
        )
    console.print(circuits)

    for job in store.jobs.recent(status="running", limit=100):
        console.print(
            f"running: job {job.id[:8]} {job.pipeline} ({job.mode}) on {job.executor_id or '-'}",
            highlight=False,
        )
