"""Two-way FHIR sync against a real FHIR server (sekmet-fhir on loopback, see
tests/fhir_server.py), with pacsync's store (SQLite) on the local side: records created,
changed and deleted on each side, both sides changed under each strategy, a decision
made in the conflicts store written by the next sync, and a third change made during
the write caught by If-Match."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_server import FhirServer, sekmet
from pacsync.connectors.fhir.client import FhirClient
from pacsync.db.conflicts import ConflictStore
from pacsync.db.conflicts import Strategy as Decision
from pacsync.db.fhir_resources import FhirResourceStore
from pacsync.db.record_states import StoreRecordStates
from pacsync.db.store import open_store
from pacsync.domain.fhir_conflicts import ConflictPolicy, Rule, Strategy
from pacsync.errors import FhirResourceNotFound
from pacsync.sync.fhir_request import Direction, FhirSyncRequest, SyncMode
from pacsync.sync.fhir_sync import FhirSync

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with sekmet(tmp_path_factory.mktemp("sekmet-sync")) as running:
        yield running


class Sides:
    def __init__(self, client: FhirClient, folder: Path) -> None:
        engine = open_store(f"sqlite:///{folder / 'store.db'}")
        self.client = client
        self.local = FhirResourceStore(engine)
        self.conflicts = ConflictStore(engine)
        self.scope = f"fhir:it{secrets.token_hex(3)}"
        self.sync = FhirSync(client, self.local, StoreRecordStates(engine), self.conflicts)

    def run(self, pid: str, strategy: Strategy = Strategy.MANUAL, **policy: Any) -> dict[str, int]:
        """A patient sync of ``pid`` (the server holds other tests' patients too)."""
        request = FhirSyncRequest(
            self.scope,
            ("Patient",),
            Direction.BIDIRECTIONAL,
            SyncMode.PATIENT,
            ConflictPolicy(strategy, **policy),
            pid,
        )
        return self.sync.run(request)["Patient"]

    def remote(self, pid: str) -> dict[str, Any]:
        return self.client.read("Patient", pid).resource

    def local_(self, pid: str) -> dict[str, Any]:
        found = self.local.current("Patient", pid)
        assert found is not None
        return found

    def edit_remote(self, pid: str, **changes: Any) -> None:
        held = self.client.read("Patient", pid)
        self.client.update({**held.resource, **changes}, if_match=held.etag)

    def edit_local(self, pid: str, **changes: Any) -> None:
        self.local.save({**self.local_(pid), **changes})


@pytest.fixture
def sides(server: FhirServer, tmp_path: Path) -> Iterator[Sides]:
    with server.client() as client:
        yield Sides(client, tmp_path)


def new_id() -> str:
    return f"sync-{secrets.token_hex(4)}"


def patient(pid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Sync"}],
            "gender": "female", **extra}  # fmt: skip


@pytest.fixture
def agreed(sides: Sides) -> str:
    """A patient made locally and synced to the server."""
    pid = new_id()
    sides.local.save(patient(pid))
    assert sides.run(pid)["pushed"] == 1
    return pid


def test_a_local_record_is_created_on_the_server(sides: Sides, agreed: str) -> None:
    assert sides.remote(agreed)["name"] == [{"family": "Sync"}]
    assert sides.run(agreed)["unchanged"] == 1


def test_a_server_record_is_created_locally(sides: Sides) -> None:
    pid = new_id()
    sides.client.update(patient(pid, birthDate="1970-01-01"))
    assert sides.run(pid)["pulled"] == 1
    assert sides.local_(pid)["birthDate"] == "1970-01-01"


def test_a_change_on_each_side_reaches_the_other(sides: Sides, agreed: str) -> None:
    sides.edit_local(agreed, birthDate="1980-02-02")
    sides.edit_remote(agreed, active=True)
    counts = sides.run(agreed)
    assert (counts["pushed"], counts["pulled"]) == (1, 1)
    for side in (sides.local_(agreed), sides.remote(agreed)):
        assert (side["birthDate"], side["active"]) == ("1980-02-02", True)


@pytest.mark.parametrize(
    ("strategy", "gender"),
    [
        (Strategy.LAST_WRITE_WINS, "unknown"),  # the server's change came last
        (Strategy.LOCAL_WINS, "other"),
        (Strategy.REMOTE_WINS, "unknown"),
        (Strategy.FIELD_MERGE, "other"),  # with local-wins as its fallback
    ],
)
def test_both_sides_changed_under_each_strategy(
    sides: Sides, agreed: str, strategy: Strategy, gender: str
) -> None:
    sides.edit_local(agreed, gender="other", birthDate="1990-01-01")
    sides.edit_remote(agreed, gender="unknown")
    counts = sides.run(agreed, strategy, fallback=Strategy.LOCAL_WINS)
    assert counts["conflicts"] == 0
    assert sides.remote(agreed)["gender"] == gender
    assert sides.local_(agreed)["gender"] == gender
    if strategy is Strategy.FIELD_MERGE:
        assert sides.remote(agreed)["birthDate"] == "1990-01-01"


def test_a_manual_conflict_is_decided_in_the_conflicts_store(sides: Sides, agreed: str) -> None:
    sides.edit_local(agreed, gender="other")
    sides.edit_remote(agreed, gender="unknown")
    assert sides.run(agreed)["conflicts"] == 1
    items, total = sides.conflicts.list(status="open", pipeline=sides.scope)
    assert total == 1
    assert items[0].record_key == agreed
    assert items[0].fields[0]["field"] == "gender"

    sides.conflicts.resolve(items[0].id, Decision.USE_REMOTE, actor="tester")
    counts = sides.run(agreed)
    assert counts["pulled"] == 1
    assert sides.local_(agreed)["gender"] == "unknown"
    assert sides.run(agreed)["unchanged"] == 1


def test_an_auto_resolution_rule_lets_the_server_telecom_win(sides: Sides, agreed: str) -> None:
    sides.edit_local(agreed, telecom=[{"system": "phone", "value": "local"}])
    sides.edit_remote(agreed, telecom=[{"system": "phone", "value": "ehr"}])
    counts = sides.run(agreed, rules=(Rule("telecom", "remote"),))
    assert counts["conflicts"] == 0
    assert sides.local_(agreed)["telecom"] == [{"system": "phone", "value": "ehr"}]


def test_a_local_deletion_deletes_on_the_server(sides: Sides, agreed: str) -> None:
    sides.local.remove("Patient", agreed)
    request = FhirSyncRequest(sides.scope, ("Patient",), mode=SyncMode.FULL)
    counts = sides.sync.run(request)["Patient"]
    assert counts["deleted_remote"] == 1
    with pytest.raises(FhirResourceNotFound):
        sides.remote(agreed)


def test_a_server_deletion_deletes_locally(sides: Sides, agreed: str) -> None:
    sides.client.delete("Patient", agreed)
    request = FhirSyncRequest(sides.scope, ("Patient",), mode=SyncMode.FULL)
    assert sides.sync.run(request)["Patient"]["deleted_local"] == 1
    assert sides.local.current("Patient", agreed) is None


def test_a_third_change_during_the_write_is_caught_by_if_match(sides: Sides, agreed: str) -> None:
    sides.edit_local(agreed, gender="other")
    real_update = sides.client.update
    raced: list[str] = []

    def racing_update(resource: dict[str, Any], *, if_match: str | None = None) -> Any:
        if not raced:  # another writer gets in between our read and our write
            raced.append(agreed)
            sides.edit_remote(agreed, birthDate="2001-01-01")
        return real_update(resource, if_match=if_match)

    sides.client.update = racing_update  # type: ignore[method-assign]
    counts = sides.run(agreed)
    assert counts["retried"] == 1
    remote = sides.remote(agreed)
    assert (remote["gender"], remote["birthDate"]) == ("other", "2001-01-01")
    assert sides.local_(agreed)["birthDate"] == "2001-01-01"


def test_an_incremental_sync_reads_what_changed_since_its_position(sides: Sides) -> None:
    pid = new_id()
    sides.client.update(patient(pid))
    request = FhirSyncRequest(sides.scope, ("Patient",), mode=SyncMode.INCREMENTAL)
    sides.sync.run(request)  # the first run reads everything: the position is set
    assert sides.local_(pid)["gender"] == "female"
    sides.edit_remote(pid, gender="other")
    local_only = new_id()
    sides.local.save(patient(local_only))

    counts = sides.sync.run(request)["Patient"]

    assert counts["pulled"] == 1
    assert counts["pushed"] == 1
    assert sides.local_(pid)["gender"] == "other"
    assert sides.remote(local_only)["id"] == local_only
    assert sides.sync.run(request)["Patient"]["pulled"] == 0


def test_a_patient_sync_brings_that_patients_observations_only(sides: Sides) -> None:
    mine, other = new_id(), new_id()
    for pid in (mine, other):
        sides.client.update(patient(pid))
        sides.client.update(
            {"resourceType": "Observation", "id": f"obs-{pid}", "status": "final",
             "code": {"text": "heart rate"}, "subject": {"reference": f"Patient/{pid}"}}
        )  # fmt: skip
    request = FhirSyncRequest(
        sides.scope, ("Patient", "Observation"), mode=SyncMode.PATIENT, patient=mine
    )
    counts = sides.sync.run(request)
    assert (counts["Patient"]["pulled"], counts["Observation"]["pulled"]) == (1, 1)
    assert sides.local.current("Observation", f"obs-{mine}") is not None
    assert sides.local.current("Observation", f"obs-{other}") is None
    assert sides.local.current("Patient", other) is None


def test_an_incremental_sync_finds_a_deletion_on_the_server_in_its_history(sides: Sides) -> None:
    pid = new_id()
    sides.client.update(patient(pid))
    request = FhirSyncRequest(sides.scope, ("Patient",), mode=SyncMode.INCREMENTAL)
    sides.sync.run(request)
    assert sides.local.current("Patient", pid) is not None
    sides.client.delete("Patient", pid)

    counts = sides.sync.run(request)["Patient"]

    assert counts["deleted_local"] == 1
    assert sides.local.current("Patient", pid) is None
    assert sides.sync.run(request)["Patient"]["deleted_local"] == 0


def test_a_deletion_against_a_change_is_a_conflict_then_decided(sides: Sides, agreed: str) -> None:
    sides.client.delete("Patient", agreed)
    sides.edit_local(agreed, gender="other")
    assert sides.run(agreed)["conflicts"] == 1
    items, _ = sides.conflicts.list(status="open", pipeline=sides.scope)
    (conflict,) = items
    assert [f["field"] for f in conflict.fields] == ["(record)"]
    assert conflict.fields[0]["remote"] is None

    sides.conflicts.resolve(conflict.id, Decision.USE_LOCAL, actor="tester")
    assert sides.run(agreed)["pushed"] == 1
    assert sides.remote(agreed)["gender"] == "other"  # written again on the server


def test_a_patient_sync_deletes_locally_what_the_server_deleted(sides: Sides, agreed: str) -> None:
    obs = f"obs-{agreed}"
    sides.client.update(
        {"resourceType": "Observation", "id": obs, "status": "final",
         "code": {"text": "heart rate"}, "subject": {"reference": f"Patient/{agreed}"}}
    )  # fmt: skip
    request = FhirSyncRequest(sides.scope, ("Observation",), mode=SyncMode.PATIENT, patient=agreed)
    assert sides.sync.run(request)["Observation"]["pulled"] == 1
    sides.client.delete("Observation", obs)
    assert sides.sync.run(request)["Observation"]["deleted_local"] == 1
    assert sides.local.current("Observation", obs) is None


def test_a_patient_the_server_holds_under_another_id_is_not_created_twice(sides: Sides) -> None:
    mrn = {"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": secrets.token_hex(5)}
    there, here = new_id(), new_id()
    sides.client.update(patient(there, identifier=[mrn]))
    sides.local.save(patient(here, identifier=[mrn]))

    counts = sides.run(here)

    assert (counts["pushed"], counts["conflicts"]) == (0, 1)
    with pytest.raises(FhirResourceNotFound):
        sides.remote(here)
    items, _ = sides.conflicts.list(status="open", pipeline=sides.scope)
    (twin,) = items
    assert twin.fields[0]["field"] == "(identifier)"
    assert twin.fields[0]["remote"] == {"ids": [there]}
    sides.conflicts.resolve(twin.id, Decision.USE_REMOTE, actor="tester")
    assert sides.run(here)["pushed"] == 0  # decided: the server's record is this one


def test_a_new_patient_with_an_identifier_is_created_once_at_its_id(sides: Sides) -> None:
    mrn = {"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": secrets.token_hex(5)}
    pid = new_id()
    sides.local.save(patient(pid, identifier=[mrn]))
    assert sides.run(pid)["pushed"] == 1  # a conditional update on the identifier
    held = sides.client.read("Patient", pid)
    assert (held.resource["identifier"], held.version) == ([mrn], "1")
    found = list(sides.client.search("Patient", {"identifier": f"{mrn['system']}|{mrn['value']}"}))
    assert [r["id"] for r in found] == [pid]
    assert sides.run(pid)["unchanged"] == 1
