"""``/statistics``: per day and pipeline, how many jobs ran, how they ended, what they moved."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from pacsync.api.deps import AUTHENTICATED, StateDep, Viewer
from pacsync.api.schemas import DailyStatistics, Statistics

router = APIRouter(tags=["statistics"], responses=AUTHENTICATED)


@router.get("/statistics", summary="Jobs, outcomes, records, bytes and mean duration per day")
def statistics(
    state: StateDep,
    _who: Viewer,
    *,
    pipeline: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[dt.date | None, Query(description="first day (UTC), inclusive")] = None,
    until: Annotated[dt.date | None, Query(description="last day (UTC), inclusive")] = None,
) -> Statistics:
    days = state.store.statistics.daily(pipeline=pipeline, since=since, until=until)
    return Statistics(
        items=[
            DailyStatistics(
                day=d.day,
                pipeline=d.pipeline,
                jobs=d.jobs,
                successes=d.succeeded,
                failures=d.failed,
                records=d.records,
                bytes=d.bytes,
                mean_duration_s=round(d.duration_s / d.jobs, 3) if d.jobs else None,
            )
            for d in days
        ]
    )
