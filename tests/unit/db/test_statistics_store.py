"""Daily statistics read back per day and pipeline, and added up per pipeline."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, insert

from pacsync.db.statistics import StatisticsStore
from pacsync.db.tables import daily_statistics

D1, D2, D3 = dt.date(2026, 11, 21), dt.date(2026, 11, 22), dt.date(2026, 11, 23)


def seed(engine: Engine) -> None:
    rows = [
        (D1, "ehr", 2, 2, 0, 100, 4000, 3.0),
        (D2, "ehr", 4, 3, 1, 50, 1000, 10.0),
        (D2, "pms", 1, 0, 1, 0, 0, 1.5),
        (D3, "pms", 0, 0, 0, 0, 0, 0.0),
    ]
    with engine.begin() as conn:
        for day, pipeline, jobs, ok, failed, records, size, seconds in rows:
            conn.execute(
                insert(daily_statistics).values(
                    day=day,
                    pipeline=pipeline,
                    jobs=jobs,
                    succeeded=ok,
                    failed=failed,
                    records=records,
                    bytes=size,
                    duration_s=seconds,
                )
            )


def test_days_filter_by_pipeline_and_inclusive_dates(engine: Engine) -> None:
    seed(engine)
    stats = StatisticsStore(engine)
    assert [(d.day, d.pipeline) for d in stats.daily()] == [
        (D1, "ehr"),
        (D2, "ehr"),
        (D2, "pms"),
        (D3, "pms"),
    ]
    ehr = stats.daily(pipeline="ehr", since=D2)
    assert [(d.day, d.jobs, d.failed, d.mean_duration_s) for d in ehr] == [(D2, 4, 1, 2.5)]
    assert [d.day for d in stats.daily(since=D2, until=D2)] == [D2, D2]
    noon = dt.datetime(2026, 11, 22, 12)
    assert [d.day for d in stats.daily(pipeline="ehr", until=noon)] == [D1, D2]
    assert stats.daily(pipeline="pms", since=D3)[0].mean_duration_s == 0.0


def test_totals_add_every_day_up_per_pipeline(engine: Engine) -> None:
    seed(engine)
    totals = {t.pipeline: t for t in StatisticsStore(engine).totals()}
    assert (totals["ehr"].jobs, totals["ehr"].records, totals["ehr"].bytes) == (6, 150, 5000)
    assert totals["ehr"].duration_s == 13.0
    assert (totals["pms"].succeeded, totals["pms"].failed) == (0, 1)
    assert StatisticsStore(engine).daily(pipeline="none") == []
