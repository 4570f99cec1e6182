"""``/worklist``: schedule, list, read and cancel procedure steps over the API."""

from __future__ import annotations

from typing import Any

from pacsync.db.study_events import StudyEvents
from pacsync.domain.access import Role

from .conftest import Api, problem

BODY: dict[str, Any] = {
    "accession_number": "ACC1",
    "patient_id": "P100",
    "patient_name": "DOE^JOHN",
    "modality": "CT",
    "station_ae": "CT1",
    "start": "2026-11-24T09:30:00",
    "study_uid": "2.25.7001",
}


def test_an_operator_schedules_and_a_viewer_lists(api: Api) -> None:
    created = api.post("/worklist", json=BODY, as_=Role.OPERATOR)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["source"], body["step_id"]) == ("scheduled", "api", "ACC1")
    assert body["start"] == "2026-11-24T09:30:00"
    later = {**BODY, "accession_number": "ACC2", "start": "2026-11-25T08:00:00",
             "study_uid": None, "station_ae": "MR1", "modality": "MR"}  # fmt: skip
    assert api.post("/worklist", json=later, as_=Role.OPERATOR).status_code == 201
    listed = api.get("/worklist", as_=Role.VIEWER).json()
    assert [p["accession_number"] for p in listed["items"]] == ["ACC1", "ACC2"]
    assert listed["total"] == 2
    day = api.get("/worklist", params={"date": "2026-11-25"}, as_=Role.VIEWER).json()
    assert [p["accession_number"] for p in day["items"]] == ["ACC2"]
    station = api.get("/worklist", params={"station": "CT1"}, as_=Role.VIEWER).json()
    assert [p["accession_number"] for p in station["items"]] == ["ACC1"]
    one = api.get(f"/worklist/{body['id']}", as_=Role.VIEWER)
    assert one.json()["patient_name"] == "DOE^JOHN"
    (entry,) = api.audit("worklist.add")[:1]
    assert entry["outcome"] == "ok"


def test_scheduling_a_study_puts_it_on_its_timeline(api: Api) -> None:
    assert api.post("/worklist", json=BODY, as_=Role.OPERATOR).status_code == 201
    (event,) = StudyEvents(api.store.engine).timeline("2.25.7001")
    assert (event.event.value, event.detail["by"]) == ("scheduled", "api")
    workflow = api.get("/studies/2.25.7001/workflow", as_=Role.VIEWER).json()
    assert workflow["status"] == "scheduled"


def test_cancel_then_cancel_again(api: Api) -> None:
    procedure_id = api.post("/worklist", json=BODY, as_=Role.OPERATOR).json()["id"]
    cancelled = api.delete(f"/worklist/{procedure_id}", as_=Role.OPERATOR)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert api.get("/worklist", as_=Role.VIEWER).json()["items"] == []
    every = api.get("/worklist", params={"status": "all"}, as_=Role.VIEWER).json()
    assert [p["status"] for p in every["items"]] == ["cancelled"]
    problem(api.delete(f"/worklist/{procedure_id}", as_=Role.OPERATOR), 409, "PACS-107")
    problem(api.delete("/worklist/999", as_=Role.OPERATOR), 404, "PACS-104")
    problem(api.get("/worklist/999", as_=Role.VIEWER), 404, "PACS-104")


def test_bad_input_is_refused_with_the_field_named(api: Api) -> None:
    refused = api.post("/worklist", json={**BODY, "modality": "C-T"}, as_=Role.OPERATOR)
    body = problem(refused, 422, "PACS-105")
    assert any(e["field"] == "body.modality" for e in body["errors"])
    bad_ae = api.post("/worklist", json={**BODY, "station_ae": "A\\B"}, as_=Role.OPERATOR)
    assert "station_ae" in problem(bad_ae, 400, "PACS-105")["detail"]
    assert api.post("/worklist", json=BODY, as_=Role.OPERATOR).status_code == 201
    duplicate = api.post("/worklist", json=BODY, as_=Role.OPERATOR)
    assert "already scheduled" in problem(duplicate, 409, "PACS-107")["detail"]
    assert api.get("/worklist", as_=Role.VIEWER).json()["total"] == 1


def test_a_viewer_may_not_schedule_or_cancel(api: Api) -> None:
    problem(api.post("/worklist", json=BODY, as_=Role.VIEWER), 403, "PACS-002")
    problem(api.delete("/worklist/1", as_=Role.VIEWER), 403, "PACS-002")
    problem(api.get("/worklist", as_=None), 401, "PACS-002")
