"""``/sync`` and ``/jobs``: jobs are queued for the workers (none runs here), listed,
read, cancelled and retried; every write and every read of a job is audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pacsync.connectors.dbos.engine import JobClient, system_url
from pacsync.domain.access import Role
from pacsync.errors import SchemaMismatch

from .conftest import Api, problem


@pytest.fixture
def county(api: Api) -> Api:
    api.pipeline_file("county")
    return api


def engine_status(api: Api, job_id: str) -> str | None:
    client = JobClient(system_url(api.settings.store_url))
    try:
        return client.status(job_id)
    finally:
        client.close()


def ended_job(api: Api, status: str = "failed", pipeline: str = "county") -> str:
    """A job that ran and ended, as a worker would have recorded it."""
    request = {"kind": "sync", "pipeline": pipeline, "mode": "full", "entities": []}
    job_id = api.store.jobs.create(
        kind="sync", pipeline=pipeline, mode="full", entities=[], request=request
    )
    api.store.jobs.start(job_id, "worker-1")
    progress = {"entities": {"parcels": {"read": 10, "inserted": 10}}}
    error = SchemaMismatch("table Parcel does not exist") if status == "failed" else None
    api.store.jobs.finish(job_id, status, progress, error, "parcels")
    return job_id


def test_sync_start_queues_a_job_for_the_workers(county: Api) -> None:
    response = county.post(
        "/sync/start",
        as_=Role.OPERATOR,
        json={"pipeline": "county", "sync_type": "full", "entities": ["owners"]},
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert accepted["queue"] == "sync-jobs"
    job = county.store.jobs.get(accepted["job_id"])
    assert job is not None
    assert (job.pipeline, job.mode, job.entities, job.trigger) == (
        "county",
        "full",
        ["owners"],
        "api",
    )
    assert engine_status(county, job.id) == "ENQUEUED"
    (entry,) = county.audit("sync.start")
    assert (entry["target"], entry["outcome"]) == ("county", "queued")
    assert entry["detail"]["job_id"] == job.id


def test_sync_start_refuses_unknown_pipelines_and_entities(county: Api) -> None:
    problem(county.post("/sync/start", json={"pipeline": "nowhere"}), 404, "PACS-102")
    body = problem(
        county.post("/sync/start", json={"pipeline": "county", "entities": ["cats"]}),
        422,
        "PACS-101",
    )
    assert "parcels, owners" in body["hint"]
    problem(
        county.post("/sync/start", json={"pipeline": "county", "sync_type": "x"}), 422, "PACS-105"
    )
    assert county.store.jobs.recent() == []


def test_sync_status_shows_active_jobs_and_each_pipelines_last_result(county: Api) -> None:
    older = ended_job(county, "succeeded")
    newest = ended_job(county, "failed")
    queued = county.post("/sync/start", json={"pipeline": "county"}).json()["job_id"]
    status = county.get("/sync/status", as_=Role.VIEWER).json()
    assert [j["id"] for j in status["active"]] == [queued]
    (last,) = status["last_runs"]
    assert last["pipeline"] == "county"
    assert last["job"]["id"] == newest != older
    assert last["job"]["error"]["code"] == "PACS-003"
    assert last["job"]["records"] == 10


def test_post_jobs_is_idempotent_by_key(county: Api) -> None:
    body = {"pipeline": "county", "mode": "full", "priority": 3, "idempotency_key": "nightly-1"}
    first = county.post("/jobs", as_=Role.OPERATOR, json=body)
    again = county.post("/jobs", as_=Role.OPERATOR, json=body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["job_id"] == again.json()["job_id"]
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert len(county.store.jobs.recent()) == 1
    outcomes = [e["detail"]["created"] for e in county.audit("job.submit")]
    assert outcomes == [False, True]


def test_jobs_are_listed_with_filters_and_pagination(county: Api) -> None:
    ids = [ended_job(county, "succeeded") for _ in range(3)] + [ended_job(county, "failed")]
    ended_job(county, "succeeded", pipeline="other")
    page = county.get("/jobs?pipeline=county&limit=2&offset=1", as_=Role.VIEWER).json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [j["id"] for j in page["items"]] == [ids[2], ids[1]]
    failed = county.get("/jobs?status=failed", as_=Role.VIEWER).json()
    assert [j["id"] for j in failed["items"]] == [ids[3]]
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    assert county.get("/jobs", as_=Role.VIEWER, params={"since": tomorrow}).json()["total"] == 0
    assert county.get("/jobs?since=2000-01-01T00:00:00", as_=Role.VIEWER).json()["total"] == 5


def test_one_job_with_its_errors_and_the_read_audited(county: Api) -> None:
    job_id = ended_job(county, "failed")
    response = county.get(f"/jobs/{job_id[:8]}", as_=Role.VIEWER)
    assert response.status_code == 200
    job: dict[str, Any] = response.json()
    assert job["id"] == job_id
    assert job["status"] == "failed"
    assert job["request"]["pipeline"] == "county"
    (error,) = job["errors"]
    assert (error["code"], error["entity"], error["transient"]) == ("PACS-003", "parcels", False)
    assert job["progress"]["entities"]["parcels"]["read"] == 10
    (entry,) = county.audit("job.read")
    assert (entry["target"], entry["outcome"]) == (job_id, "ok")


def test_unknown_and_malformed_job_ids(county: Api) -> None:
    problem(county.get("/jobs/0b6f0e0c-0000", as_=Role.VIEWER), 404, "PACS-104")
    problem(county.get("/jobs/%25", as_=Role.VIEWER), 422, "PACS-105")
    problem(county.delete("/jobs/0b6f0e0c"), 404, "PACS-104")
    problem(county.post("/jobs/0b6f0e0c/retry"), 404, "PACS-104")


def test_cancel_a_queued_job_then_once_more(county: Api) -> None:
    job_id = county.post("/sync/start", json={"pipeline": "county"}).json()["job_id"]
    response = county.delete(f"/jobs/{job_id}", as_=Role.OPERATOR)
    assert response.status_code == 200
    assert response.json() == {"id": job_id, "status": "cancelled"}
    assert engine_status(county, job_id) == "CANCELLED"
    body = problem(county.delete(f"/jobs/{job_id}", as_=Role.OPERATOR), 409, "PACS-107")
    assert "already ended (cancelled)" in body["detail"]
    assert [e["outcome"] for e in county.audit("job.cancel")] == ["PACS-107", "ok"]


def test_retry_an_ended_job_and_its_parked_dead_letter(county: Api) -> None:
    job_id = ended_job(county, "failed")
    job = county.store.jobs.get(job_id)
    assert job is not None
    county.store.dead_letters.park_job(job_id, job.request or {}, {"code": "PACS-003"}, [])
    response = county.post(f"/jobs/{job_id}/retry", as_=Role.OPERATOR)
    assert response.status_code == 202, response.text
    new_id = response.json()["job_id"]
    new = county.store.jobs.get(new_id)
    assert new is not None
    assert (new.trigger, new.status, new.mode) == ("retry", "queued", "full")
    (letter,) = county.store.dead_letters.find(status=None)
    assert letter["status"] == "retried"
    (entry,) = county.audit("job.retry")
    assert entry["detail"] == {"new_job_id": new_id}


def test_a_job_still_queued_cannot_be_retried(county: Api) -> None:
    job_id = county.post("/sync/start", json={"pipeline": "county"}).json()["job_id"]
    problem(county.post(f"/jobs/{job_id}/retry"), 409, "PACS-107")
