"""Daily statistics per pipeline, as the job store accumulates them when jobs end."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, select

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import daily_statistics

_t = daily_statistics.c


@dataclass(frozen=True)
class DailyStatistics:
    day: dt.date
    pipeline: str
    jobs: int
    succeeded: int
    failed: int
    records: int
    bytes: int
    duration_s: float  # all jobs of the day together

    @property
    def mean_duration_s(self) -> float:
        return self.duration_s / self.jobs if self.jobs else 0.0


@dataclass(frozen=True)
class PipelineTotals:
    """Every day of one pipeline added up."""

    pipeline: str
    jobs: int
    succeeded: int
    failed: int
    records: int
    bytes: int
    duration_s: float


def _stats(row: Any) -> DailyStatistics:
    return DailyStatistics(
        day=row.day,
        pipeline=row.pipeline,
        jobs=int(row.jobs),
        succeeded=int(row.succeeded),
        failed=int(row.failed),
        records=int(row.records),
        bytes=int(row.bytes),
        duration_s=float(row.duration_s),
    )


class StatisticsStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def daily(
        self,
        pipeline: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> list[DailyStatistics]:
        """One row per day and pipeline, oldest first; ``since`` and ``until`` inclusive."""
        since, until = _day(since), _day(until)
        where: list[ColumnElement[bool]] = []
        if pipeline:
            where.append(_t.pipeline == pipeline)
        if since:
            where.append(_t.day >= since)
        if until:
            where.append(_t.day <= until)
        stmt = select(daily_statistics).where(*where).order_by(_t.day, _t.pipeline)
        with translated("store"), self.engine.connect() as conn:
            return [_stats(r) for r in conn.execute(stmt)]

    def totals(self) -> list[PipelineTotals]:
        """All days added up, per pipeline (the counters metrics export)."""
        sums = [func.sum(_t[name]).label(name) for name in _SUMMED]
        stmt = select(_t.pipeline, *sums).group_by(_t.pipeline).order_by(_t.pipeline)
        with translated("store"), self.engine.connect() as conn:
            return [
                PipelineTotals(
                    pipeline=row.pipeline,
                    **{name: int(row._mapping[name] or 0) for name in _SUMMED[:-1]},
                    duration_s=float(row.duration_s or 0),
                )
                for row in conn.execute(stmt)
            ]


_SUMMED = ("jobs", "succeeded", "failed", "records", "bytes", "duration_s")


def _day(value: dt.date | None) -> dt.date | None:
    """The day of a date or datetime (a datetime would compare as text on SQLite)."""
    return value.date() if isinstance(value, dt.datetime) else value
