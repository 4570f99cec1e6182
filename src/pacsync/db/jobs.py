"""Jobs in the store: one row per run, with progress, counts and errors."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, case, func, insert, select, update

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import daily_statistics, job_errors, jobs
from pacsync.domain.clock import utc_now
from pacsync.errors import PacsyncError

ACTIVE = ("queued", "running")


@dataclass(frozen=True, slots=True)
class JobView:
    id: str
    kind: str
    pipeline: str
    mode: str
    entities: list[str]
    status: str
    trigger: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    host: str | None
    pid: int | None
    progress: dict[str, Any]
    error_code: str | None
    error_message: str | None
    error_hint: str | None
    heartbeat_at: dt.datetime | None
    queue: str
    request: dict[str, Any] | None
    attempts: int
    executor_id: str | None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or utc_now()
        return (end - self.started_at).total_seconds()


class JobStore:
    """Creates, updates and lists jobs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        *,
        kind: str,
        pipeline: str,
        mode: str,
        entities: list[str],
        trigger: str = "manual",
        job_id: str | None = None,
        queue: str = "sync-jobs",
        request: dict[str, Any] | None = None,
    ) -> str:
        job_id = job_id or str(uuid.uuid4())
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                insert(jobs).values(
                    id=job_id,
                    kind=kind,
                    pipeline=pipeline,
                    mode=mode,
                    entities=entities,
                    status="queued",
                    trigger=trigger,
                    created_at=utc_now(),
                    progress={},
                    queue=queue,
                    request=request,
                )
            )
        return job_id

    def start(self, job_id: str, executor_id: str | None = None) -> None:
        now = utc_now()
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    status="running",
                    started_at=now,
                    heartbeat_at=now,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    executor_id=executor_id,
                )
            )

    def progress(self, job_id: str, progress: dict[str, Any]) -> None:
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    progress=progress,
                    heartbeat_at=utc_now(),
                )
            )

    def finish(
        self,
        job_id: str,
        status: str,
        progress: dict[str, Any],
        error: PacsyncError | None = None,
        entity: str | None = None,
        *,
        attempts: int = 1,
    ) -> None:
        now = utc_now()
        values: dict[str, Any] = {
            # a job cancelled by an operator stays cancelled, whatever its run saw last
            "status": case((jobs.c.status == "cancelled", "cancelled"), else_=status),
            "finished_at": now,
            "progress": progress,
            "attempts": attempts,
        }
        if error is not None:
            values |= {
                "error_code": error.code,
                "error_message": error.message,
                "error_hint": error.hint,
            }
        with translated("store"), self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
            if error is not None:
                conn.execute(
                    insert(job_errors).values(
                        job_id=job_id,
                        entity=entity,
                        code=error.code,
                        message=error.message,
                        hint=error.hint,
                        transient=int(error.transient),
                        at=now,
                    )
                )
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one()
            self._count_day(conn, row, status, progress)

    def _count_day(self, conn: Any, row: Any, status: str, progress: dict[str, Any]) -> None:
        day = row.created_at.date()
        records = sum(
            int(e.get("inserted", 0)) + int(e.get("updated", 0)) + int(e.get("deleted", 0))
            for e in progress.get("entities", {}).values()
        )
        duration = (row.finished_at - (row.started_at or row.created_at)).total_seconds()
        key = (daily_statistics.c.day == day) & (daily_statistics.c.pipeline == row.pipeline)
        values = {
            "jobs": daily_statistics.c.jobs + 1,
            "succeeded": daily_statistics.c.succeeded + int(status == "succeeded"),
            "failed": daily_statistics.c.failed + int(status == "failed"),
            "records": daily_statistics.c.records + records,
            "duration_s": daily_statistics.c.duration_s + duration,
        }
        if not conn.execute(update(daily_statistics).where(key).values(values)).rowcount:
            conn.execute(
                insert(daily_statistics).values(
                    day=day,
                    pipeline=row.pipeline,
                    jobs=1,
                    succeeded=int(status == "succeeded"),
                    failed=int(status == "failed"),
                    records=records,
                    bytes=0,
                    duration_s=duration,
                )
            )

    def get(self, job_id: str) -> JobView | None:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id.startswith(job_id)).limit(2)).all()
        return _view(row[0]) if len(row) == 1 else None

    def recent(
        self, *, status: str | None = None, pipeline: str | None = None, limit: int = 50
    ) -> list[JobView]:
        stmt = select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if status:
            stmt = stmt.where(jobs.c.status == status)
        if pipeline:
            stmt = stmt.where(jobs.c.pipeline == pipeline)
        with translated("store"), self.engine.connect() as conn:
            return [_view(r) for r in conn.execute(stmt)]

    def page(
        self,
        *,
        status: str | None = None,
        pipeline: str | None = None,
        since: dt.datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[JobView], int]:
        """Jobs newest first, ``limit`` from ``offset``, and how many match in all."""
        where = []
        if status:
            where.append(jobs.c.status == status)
        if pipeline:
            where.append(jobs.c.pipeline == pipeline)
        if since:
            where.append(jobs.c.created_at >= since)
        stmt = select(jobs).where(*where).order_by(jobs.c.created_at.desc(), jobs.c.id)
        counted = select(func.count()).select_from(jobs).where(*where)
        with translated("store"), self.engine.connect() as conn:
            items = [_view(r) for r in conn.execute(stmt.limit(limit).offset(offset))]
            return items, int(conn.execute(counted).scalar_one())

    def latest_ended(self) -> list[JobView]:
        """The newest ended job of each pipeline (one index probe per pipeline)."""
        pipelines = select(jobs.c.pipeline).distinct().order_by(jobs.c.pipeline)
        newest = (
            select(jobs)
            .where(jobs.c.pipeline == bindparam("pipeline"), jobs.c.status.not_in(ACTIVE))
            .order_by(jobs.c.created_at.desc())
            .limit(1)
        )
        found: list[JobView] = []
        with translated("store"), self.engine.connect() as conn:
            for name in conn.execute(pipelines).scalars().all():
                row = conn.execute(newest, {"pipeline": name}).first()
                if row is not None:
                    found.append(_view(row))
        return found

    def count_by_status(self) -> dict[str, int]:
        stmt = select(jobs.c.status, func.count()).group_by(jobs.c.status)
        with translated("store"), self.engine.connect() as conn:
            return {str(status): int(n) for status, n in conn.execute(stmt)}

    def error_counts(self) -> dict[str, int]:
        """Recorded job errors by PACS code."""
        stmt = select(job_errors.c.code, func.count()).group_by(job_errors.c.code)
        with translated("store"), self.engine.connect() as conn:
            return {str(code): int(n) for code, n in conn.execute(stmt)}

    def errors(self, job_id: str) -> list[dict[str, Any]]:
        with translated("store"), self.engine.connect() as conn:
            rows = conn.execute(
                select(job_errors).where(job_errors.c.job_id == job_id).order_by(job_errors.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def active(self, pipeline: str) -> list[JobView]:
        with translated("store"), self.engine.connect() as conn:
            rows = conn.execute(
                select(jobs).where(jobs.c.pipeline == pipeline, jobs.c.status.in_(ACTIVE))
            )
            return [_view(r) for r in rows]

    def status_of(self, job_id: str) -> str | None:
        with translated("store"), self.engine.connect() as conn:
            found = conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar()
        return None if found is None else str(found)

    def cancel(self, job_id: str) -> bool:
        """Mark a queued or running job cancelled; False when it had already ended."""
        with translated("store"), self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
                    .values(status="cancelled", finished_at=utc_now())
                ).rowcount
            )

    def mark_interrupted(self, job_id: str, reason: str) -> None:
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE))
                .values(
                    status="interrupted",
                    finished_at=utc_now(),
                    error_code="PACS-006",
                    error_message=reason,
                )
            )


def _view(row: Any) -> JobView:
    m = row._mapping
    return JobView(**{f: m[f] for f in JobView.__slots__})
