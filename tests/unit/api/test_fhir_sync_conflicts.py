"""A FHIR sync's conflicts in ``/conflicts``: listed under the sync's scope, decided there
(audited), and the decision written to both sides by the next sync."""

from __future__ import annotations

from typing import Any

import pytest

from pacsync.bootstrap.fhir_sync import AnnouncedConflicts
from pacsync.connectors.memory import MemoryFhirServer
from pacsync.db.fhir_resources import FhirResourceStore
from pacsync.db.record_states import StoreRecordStates
from pacsync.domain.access import Role
from pacsync.sync.fhir_request import FhirSyncRequest, SyncMode
from pacsync.sync.fhir_sync import FhirSync

from .conftest import Api

SCOPE = "fhir:ehr"


@pytest.mark.parametrize(
    ("strategy", "value", "gender", "birth"),
    [
        ("USE_LOCAL", None, "other", "1970-01-01"),
        ("USE_REMOTE", None, "unknown", "1999-09-09"),
        ("MERGE", {"gender": "male", "birthDate": "1980-08-08"}, "male", "1980-08-08"),
    ],
)
def test_a_sync_conflict_decided_through_the_api_is_written_by_the_next_sync(
    api: Api, strategy: str, value: Any, gender: str, birth: str
) -> None:
    server = MemoryFhirServer()
    local = FhirResourceStore(api.store.engine)
    sync = FhirSync(server, local, StoreRecordStates(api.store.engine), api.store.conflicts)
    request = FhirSyncRequest(SCOPE, ("Patient",), mode=SyncMode.FULL)
    local.save({"resourceType": "Patient", "id": "p1", "gender": "female",
                "birthDate": "1960-01-01"})  # fmt: skip
    sync.run(request)
    held = server.resources[("Patient", "p1")]
    server.update({**held, "gender": "unknown", "birthDate": "1999-09-09"})
    mine = local.current("Patient", "p1")
    assert mine is not None
    local.save({**mine, "gender": "other", "birthDate": "1970-01-01"})
    assert sync.run(request)["Patient"]["conflicts"] == 1

    page = api.get(f"/conflicts?pipeline={SCOPE}", as_=Role.VIEWER).json()
    (listed,) = page["items"]
    assert (listed["entity"], listed["record_key"]) == ("Patient", "p1")
    assert sorted(listed["fields"]) == ["birthDate", "gender"]
    body = {"strategy": strategy, "value": value, "reason": "checked with the ward"}
    decided = api.post(f"/conflicts/{listed['id']}/resolve", json=body, as_=Role.OPERATOR)
    assert decided.status_code == 200, decided.text
    assert [e["outcome"] for e in api.audit("conflict.resolve")] == ["ok"]

    counts = sync.run(request)["Patient"]
    assert counts["conflicts"] == 0
    after = local.current("Patient", "p1")
    assert after is not None
    for side in (after, server.resources[("Patient", "p1")]):
        assert (side["gender"], side["birthDate"]) == (gender, birth)
    assert sync.run(request)["Patient"]["unchanged"] == 1


class Recorder:
    """Records conflicts in the store, as the event sink does, and what it announced."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.announced: list[tuple[str, str, str, list[str]]] = []

    def record_conflict(
        self, pipeline: str, entity: str, record_key: str, fields: list[dict[str, Any]]
    ) -> int:
        self.announced.append((pipeline, entity, record_key, [f["field"] for f in fields]))
        return self.api.store.conflicts.record(pipeline, entity, record_key, fields)


def test_each_conflict_opened_is_announced_once(api: Api) -> None:
    server = MemoryFhirServer()
    local = FhirResourceStore(api.store.engine)
    recorder = Recorder(api)
    conflicts = AnnouncedConflicts(api.store, recorder)
    sync = FhirSync(server, local, StoreRecordStates(api.store.engine), conflicts)
    request = FhirSyncRequest(SCOPE, ("Patient",), mode=SyncMode.FULL)
    local.save({"resourceType": "Patient", "id": "p1", "gender": "female"})
    server.update({"resourceType": "Patient", "id": "p1", "gender": "male"})
    sync.run(request)
    sync.run(request)
    assert recorder.announced == [(SCOPE, "Patient", "p1", ["gender"])]
    found = conflicts.latest(SCOPE, "Patient", "p1")
    assert found is not None
    assert found.status == "open"
