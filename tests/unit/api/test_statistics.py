"""``/statistics``: jobs, outcomes, records and mean duration per day and pipeline."""

from __future__ import annotations

import datetime as dt

from pacsync.domain.access import Role
from pacsync.errors import SchemaMismatch

from .conftest import Api, problem


def _ended(api: Api, pipeline: str, status: str, inserted: int) -> None:
    job_id = api.store.jobs.create(kind="sync", pipeline=pipeline, mode="full", entities=[])
    api.store.jobs.start(job_id)
    progress = {"entities": {"parcels": {"read": inserted, "inserted": inserted}}}
    error = SchemaMismatch("x") if status == "failed" else None
    api.store.jobs.finish(job_id, status, progress, error)


def test_statistics_per_day_and_pipeline_with_filters(api: Api) -> None:
    _ended(api, "county", "succeeded", 40)
    _ended(api, "county", "failed", 2)
    _ended(api, "other", "succeeded", 7)
    body = api.get("/statistics", as_=Role.VIEWER).json()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    by_pipeline = {d["pipeline"]: d for d in body["items"]}
    county = by_pipeline["county"]
    assert (county["day"], county["jobs"], county["successes"], county["failures"]) == (
        today,
        2,
        1,
        1,
    )
    assert county["records"] == 42
    assert county["bytes"] == 0
    assert county["mean_duration_s"] >= 0
    only = api.get("/statistics?pipeline=other", as_=Role.VIEWER).json()["items"]
    assert [d["pipeline"] for d in only] == ["other"]
    assert api.get("/statistics?until=2000-01-01", as_=Role.VIEWER).json() == {"items": []}
    assert len(api.get(f"/statistics?since={today}", as_=Role.VIEWER).json()["items"]) == 2


def test_statistics_dates_are_checked(api: Api) -> None:
    problem(api.get("/statistics?since=yesterday", as_=Role.VIEWER), 422, "PACS-105")
