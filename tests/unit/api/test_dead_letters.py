"""``/dead-letters``: listed without payloads, read whole, retried and discarded; every
one of those is audited (they may hold patient data)."""

from __future__ import annotations

import pytest

from pacsync.domain.access import Role
from pacsync.domain.records import Rejected, RowError

from .conftest import Api, problem


@pytest.fixture
def letters(api: Api) -> list[int]:
    """Three parked records of pipeline county (entity parcels) and one of pipeline other."""
    api.pipeline_file("county")
    for pipeline, keys in (("county", (1, 2, 3)), ("other", (9,))):
        rejected = [
            Rejected(
                key=(k,),
                record={"ParcelID": k, "Owner": f"Patient {k}"},
                error=RowError("year_built", "range", f"year {k} too early"),
                fingerprint=f"fp{k}",
            )
            for k in keys
        ]
        api.store.dead_letters.park("job-1", pipeline, "parcels", rejected)
    return [d["id"] for d in api.store.dead_letters.find(status=None)]


def test_the_list_pages_and_filters_and_shows_no_payload(api: Api, letters: list[int]) -> None:
    page = api.get("/dead-letters?pipeline=county&limit=2&offset=1", as_=Role.VIEWER).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [d["id"] for d in page["items"]] == letters[1:3]
    first = page["items"][0]
    assert (first["rule"], first["field"], first["error_code"]) == (
        "range",
        "year_built",
        "PACS-004",
    )
    assert "payload" not in first
    assert "Patient" not in str(page)
    everything = api.get("/dead-letters?status=all", as_=Role.VIEWER).json()
    assert everything["total"] == 4
    (entry, _) = api.audit("dead_letter.list")
    assert entry["detail"] == {"pipeline": None, "status": "all", "returned": 4}


def test_one_letter_is_read_whole_and_the_read_audited(api: Api, letters: list[int]) -> None:
    response = api.get(f"/dead-letters/{letters[0]}", as_=Role.VIEWER)
    assert response.status_code == 200
    letter = response.json()
    assert letter["payload"] == {"ParcelID": 1, "Owner": "Patient 1"}
    assert letter["history"][0]["event"] == "parked"
    (entry,) = api.audit("dead_letter.read")
    assert (entry["target"], entry["outcome"]) == (str(letters[0]), "ok")
    problem(api.get("/dead-letters/999999", as_=Role.VIEWER), 404, "PACS-104")
    problem(api.get("/dead-letters/abc", as_=Role.VIEWER), 422, "PACS-105")


def test_retry_a_record_queues_a_run_of_its_entity(api: Api, letters: list[int]) -> None:
    response = api.post(f"/dead-letters/{letters[0]}/retry", as_=Role.OPERATOR)
    assert response.status_code == 202, response.text
    job = api.store.jobs.get(response.json()["job_id"])
    assert job is not None
    assert (job.pipeline, job.entities, job.trigger) == ("county", ["parcels"], "retry")
    letter = api.store.dead_letters.get(letters[0])
    assert letter is not None
    assert letter["status"] == "retry"
    (entry,) = api.audit("dead_letter.retry")
    assert entry["detail"] == {"job_id": job.id}


def test_discard_then_neither_discard_nor_retry_again(api: Api, letters: list[int]) -> None:
    response = api.post(f"/dead-letters/{letters[1]}/discard", as_=Role.OPERATOR)
    assert response.json() == {"id": letters[1], "status": "discarded"}
    problem(api.post(f"/dead-letters/{letters[1]}/discard"), 409, "PACS-107")
    problem(api.post(f"/dead-letters/{letters[1]}/retry"), 409, "PACS-107")
    problem(api.post("/dead-letters/999999/discard"), 404, "PACS-104")
    outcomes = [e["outcome"] for e in api.audit("dead_letter.discard")]
    assert outcomes == ["PACS-104", "PACS-107", "ok"]


def test_viewers_may_not_retry_or_discard(api: Api, letters: list[int]) -> None:
    problem(api.post(f"/dead-letters/{letters[0]}/retry", as_=Role.VIEWER), 403, "PACS-002")
    problem(api.post(f"/dead-letters/{letters[0]}/discard", as_=Role.VIEWER), 403, "PACS-002")
