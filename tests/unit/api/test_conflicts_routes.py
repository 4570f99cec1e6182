"""``/conflicts``: listed by status and pipeline in pages, read with each field's local,
remote and base values, decided once by a strategy; reads and decisions audited."""

from __future__ import annotations

from typing import Any

import pytest

from pacsync.domain.access import Role

from .conftest import Api, problem

PHONE = {"field": "phone", "local": "555-0100", "remote": "555-0199", "base": "555-0000"}
CITY = {"field": "city", "local": "Salem", "remote": "Salem", "base": "Salem"}
EMAIL = {"field": "email", "local": "a@x.org", "remote": "a@x.org", "base": "old@x.org"}


@pytest.fixture
def conflicts(api: Api) -> list[int]:
    """Three conflicts of pipeline pms (patients 1-3) and one of pipeline ehr."""
    record = api.store.conflicts.record
    made = [record("pms", "patients", f"[{k}]", [PHONE, EMAIL]) for k in (1, 2, 3)]
    made.append(record("ehr", "patients", "[9]", [CITY]))
    return made


def test_the_list_pages_filters_and_names_fields_only(api: Api, conflicts: list[int]) -> None:
    page = api.get("/conflicts?pipeline=pms&limit=2&offset=1", as_=Role.VIEWER).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [c["id"] for c in page["items"]] == [conflicts[1], conflicts[0]]
    first = page["items"][0]
    assert first["fields"] == ["phone", "email"]
    assert (first["status"], first["strategy"]) == ("open", None)
    assert "555-0100" not in str(page)
    api.store.conflicts.resolve(conflicts[3], "ignore", reason="noise")
    assert api.get("/conflicts").json()["total"] == 3
    assert api.get("/conflicts?status=ignored").json()["items"][0]["id"] == conflicts[3]
    assert api.get("/conflicts?status=all").json()["total"] == 4
    problem(api.get("/conflicts?status=weird"), 422, "PACS-105")
    entry = api.audit("conflict.list")[-1]
    assert entry["detail"] == {"pipeline": "pms", "status": "open", "returned": 2}


def test_one_conflict_shows_local_remote_and_base(api: Api, conflicts: list[int]) -> None:
    found = api.get(f"/conflicts/{conflicts[0]}", as_=Role.VIEWER).json()
    assert found["fields"] == [PHONE, EMAIL]
    assert (found["pipeline"], found["entity"], found["record_key"]) == ("pms", "patients", "[1]")
    (entry,) = api.audit("conflict.read")
    assert entry["target"] == str(conflicts[0])
    problem(api.get("/conflicts/999999"), 404, "PACS-104")


@pytest.mark.parametrize(
    ("strategy", "value", "expected"),
    [
        ("USE_LOCAL", None, {"phone": "555-0100", "email": "a@x.org"}),
        ("USE_REMOTE", None, {"phone": "555-0199", "email": "a@x.org"}),
        ("MERGE", {"phone": "555-0142"}, {"phone": "555-0142", "email": "a@x.org"}),
        ("MANUAL", {"phone": "555-7777"}, {"phone": "555-7777"}),
        ("IGNORE", None, None),
    ],
)
def test_each_strategy_decides_once(
    api: Api, conflicts: list[int], strategy: str, value: Any, expected: Any
) -> None:
    body = {"strategy": strategy, "value": value, "reason": "checked with the clinic"}
    response = api.post(f"/conflicts/{conflicts[0]}/resolve", json=body, as_=Role.OPERATOR)
    assert response.status_code == 200, response.text
    decided = response.json()
    assert decided["strategy"] == strategy
    assert decided["status"] == ("ignored" if strategy == "IGNORE" else "resolved")
    assert decided["resolved_value"] == expected
    assert decided["reason"] == "checked with the clinic"
    assert decided["resolved_by"] == f"key:{api.tokens[Role.OPERATOR].split('_')[1]}"
    again = problem(api.post(f"/conflicts/{conflicts[0]}/resolve", json=body), 409, "PACS-107")
    assert "already" in again["detail"]
    entries = api.audit("conflict.resolve")
    assert [e["outcome"] for e in entries] == ["PACS-107", "ok"]
    assert entries[1]["detail"] == {"strategy": strategy}


def test_bad_decisions_are_refused_and_change_nothing(api: Api, conflicts: list[int]) -> None:
    path = f"/conflicts/{conflicts[0]}/resolve"
    manual = problem(api.post(path, json={"strategy": "MANUAL", "reason": "r"}), 422, "PACS-105")
    assert "MANUAL needs a value" in manual["detail"]
    problem(api.post(path, json={"strategy": "use_local", "reason": "r"}), 422, "PACS-105")
    problem(api.post(path, json={"strategy": "USE_LOCAL"}), 422, "PACS-105")
    both = problem(api.post(path, json={"strategy": "MERGE", "reason": "r"}), 400, "PACS-105")
    assert "phone" in both["detail"]
    problem(
        api.post(path, json={"strategy": "IGNORE", "reason": "r"}, as_=Role.VIEWER), 403, "PACS-002"
    )
    problem(
        api.post("/conflicts/999999/resolve", json={"strategy": "IGNORE", "reason": "r"}),
        404,
        "PACS-104",
    )
    assert api.get(f"/conflicts/{conflicts[0]}").json()["status"] == "open"
