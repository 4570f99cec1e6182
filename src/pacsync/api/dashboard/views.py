"""What the dashboard's pages show, read from the store the way the API routes read it
(the same store methods and operations); no I/O of its own beyond them."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pacsync import bootstrap
from pacsync.api.dashboard.charts import DailyChart, daily_records
from pacsync.api.state import ApiState
from pacsync.config import list_pipelines, load_pipeline
from pacsync.connectors.sql.engine import redact
from pacsync.db.circuits import CircuitStore
from pacsync.db.connections import masked
from pacsync.db.jobs import JobView
from pacsync.domain.clock import utc_now
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import PacsyncError
from pacsync.jobs.schedules import schedules_of

log = logging.getLogger("pacsync.api")


@dataclass
class PipelineRow:
    name: str
    file: str
    valid: bool
    error: str | None = None
    entities: list[str] = field(default_factory=list)
    last: JobView | None = None
    next_run: dt.datetime | None = None
    next_mode: str | None = None
    success_rate: float | None = None
    jobs: int = 0
    records: int = 0
    sql: bool = False


def pipelines(state: ApiState) -> list[PipelineRow]:
    """Every pipeline file with its last run, next scheduled run and success rate."""
    last = {j.pipeline: j for j in state.store.jobs.latest_ended()}
    totals = {t.pipeline: t for t in state.store.statistics.totals()}
    now = dt.datetime.now(dt.UTC)
    rows = []
    for path in list_pipelines(state.settings):
        try:
            spec = load_pipeline(path)
        except PacsyncError as error:
            rows.append(PipelineRow(path.stem, str(path), False, f"{error.code} {error.message}"))
            continue
        row = PipelineRow(spec.name, str(path), True, entities=list(spec.entities))
        source = spec.connections[spec.source.connection]
        row.sql = source.mllp is None and source.folder is None
        row.last = last.get(spec.name)
        ticks = [(s.next_tick(now), s.mode) for s in schedules_of(spec, str(path))]
        if ticks:
            row.next_run, row.next_mode = min(ticks)
        total = totals.get(spec.name)
        if total is not None:
            ended = total.succeeded + total.failed
            row.jobs, row.records = total.jobs, total.records
            row.success_rate = round(100 * total.succeeded / ended, 1) if ended else None
        rows.append(row)
    return rows


def records_chart(state: ApiState, days: int = 14) -> DailyChart:
    today = utc_now().date()
    since = today - dt.timedelta(days=days - 1)
    counts: dict[dt.date, int] = {}
    for d in state.store.statistics.daily(since=since, until=today):
        counts[d.day] = counts.get(d.day, 0) + d.records
    return daily_records(counts, today, days)


def queue_depths(state: ApiState) -> dict[str, dict[str, int]] | None:
    try:
        return state.job_client().queue_depths()
    except PacsyncError as error:  # the job layer is down: the page says so
        log.warning("dashboard: queue depths not read: %s", error)
        return None


def circuits(state: ApiState) -> list[Any]:
    return list(CircuitStore(state.store.engine).all())


def recent_errors(state: ApiState, hours: int = 24) -> list[JobView]:
    since = utc_now() - dt.timedelta(hours=hours)
    found = []
    for status in ("failed", "interrupted"):
        items, _ = state.store.jobs.page(status=status, since=since, limit=50)
        found += items
    return sorted(found, key=lambda j: j.created_at, reverse=True)


# -- property sync -------------------------------------------------------------------------


@dataclass
class SyncPipeline:
    spec: PipelineSpec
    path: Path
    source_ref: str
    source_url: str
    text: str
    schedule: dict[str, Any] | None
    editable: bool = True  # False: the file holds a password, shown masked


# a password written into a URL of the file (not a ${VARIABLE})
_PASSWORD = re.compile(r"(://[^/\s:@]+:)(?!\$\{)([^@\s/]+)(@)")


def masked_text(text: str) -> tuple[str, bool]:
    """The file with passwords written in its URLs hidden, and whether there were none."""
    shown, found = _PASSWORD.subn(r"\1***\3", text)
    return shown, found == 0


def sync_pipeline(state: ApiState, name: str) -> SyncPipeline:
    path, spec = bootstrap.pipeline(name, state.settings)
    declared = spec.connections[spec.source.connection]
    url = masked(redact(declared.url), {})[0]
    text, editable = masked_text(path.read_text(encoding="utf-8"))
    return SyncPipeline(
        spec=spec,
        path=path,
        source_ref=f"{spec.name}.{spec.source.connection}",
        source_url=url,
        text=text,
        schedule=spec.schedule.model_dump() if spec.schedule else None,
        editable=editable,
    )


def entity_last_runs(jobs: list[JobView]) -> dict[str, dict[str, Any]]:
    """Per entity, its counts in the newest ended job that ran it."""
    found: dict[str, dict[str, Any]] = {}
    for job in jobs:
        if job.status in ("queued", "running"):
            continue
        for name, counts in job.progress.get("entities", {}).items():
            found.setdefault(name, {**counts, "job": job})
    return found


def job_summary(job: JobView) -> dict[str, Any]:
    """What the live parts of the pages need of a job (JSON)."""
    entities = job.progress.get("entities", {})
    return {
        "id": job.id,
        "pipeline": job.pipeline,
        "kind": job.kind,
        "mode": job.mode,
        "status": job.status,
        "entities": {
            name: {
                "read": int(c.get("read") or 0),
                "total": c.get("total"),
                "inserted": int(c.get("inserted") or 0),
                "updated": int(c.get("updated") or 0),
                "deleted": int(c.get("deleted") or 0),
                "failed": int(c.get("dead_lettered") or c.get("failed") or 0),
            }
            for name, c in entities.items()
        },
        "records": sum(int(c.get("read") or 0) for c in entities.values()),
        "error": (
            {"code": job.error_code, "message": job.error_message} if job.error_code else None
        ),
        "duration_s": round(job.duration_s, 1) if job.duration_s is not None else None,
    }


def live_jobs(state: ApiState, pipeline: str | None, ids: list[str]) -> dict[str, Any]:
    """Active jobs (of ``pipeline``), plus the jobs named in ``ids`` however they ended."""
    store = state.store.jobs
    active = [*store.recent(status="running", limit=100), *store.recent(status="queued", limit=100)]
    if pipeline:
        active = [j for j in active if j.pipeline == pipeline]
    seen = {j.id for j in active}
    named = []
    for job_id in ids[:50]:
        if job_id not in seen:
            job = store.get(job_id)
            if job is not None:
                named.append(job)
    return {"jobs": [job_summary(j) for j in [*active, *named]]}
