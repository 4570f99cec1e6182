"""A FHIR sync's conflicts in ``/conflicts``: listed under the sync's scope, decided there
(audited), and the decision written to both sides by the next sync."""

from __future__ import annotations

from typing import Any

import pytest

from pacsync.connectors.memory import MemoryFhirServer
from pacsync.db.fhir_resources import FhirResourceStore
from pacsync.db.record_states import StoreRecordStates
from pacsync.domain.access import Role
from pacsync.sync.fhir_sync import FhirSync, FhirSyncRequest, SyncMode

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
