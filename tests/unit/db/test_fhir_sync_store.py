"""The pacsync store as a FHIR sync's local side: resources read by change time and
patient, base versions and positions in record state, a record's latest decision."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import Engine, select

from pacsync.db.conflicts import ConflictStore, Strategy
from pacsync.db.fhir_resources import FhirResourceStore, fhir_resources
from pacsync.db.record_states import StoreRecordStates
from pacsync.ports import SyncBase


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_saved_resources_are_versioned_and_read_back_by_change_time(engine: Engine) -> None:
    store = FhirResourceStore(engine)
    first = store.save({"resourceType": "Patient", "id": "a", "meta": {"versionId": "9"}})
    assert first["meta"]["versionId"] == "1"  # the store's own versions, not the server's
    time.sleep(0.002)
    second = store.save({"resourceType": "Patient", "id": "b"})
    again = store.save({**first, "gender": "other"})
    assert again["meta"]["versionId"] == "2"
    assert [r["id"] for r in store.changed("Patient", None)] == ["b", "a"]
    since = _when(second["meta"]["lastUpdated"])
    assert [r["id"] for r in store.changed("Patient", since)] == ["a"]
    assert list(store.changed("Patient", _when(again["meta"]["lastUpdated"]))) == []


def test_changed_for_one_patient(engine: Engine) -> None:
    store = FhirResourceStore(engine)
    for pid in ("a", "b"):
        store.save({"resourceType": "Patient", "id": pid})
        store.save({"resourceType": "Observation", "id": f"o-{pid}",
                    "subject": {"reference": f"Patient/{pid}"}})  # fmt: skip
    assert [r["id"] for r in store.changed("Patient", None, "a")] == ["a"]
    assert [r["id"] for r in store.changed("Observation", None, "b")] == ["o-b"]


def test_a_removed_resource_is_gone(engine: Engine) -> None:
    store = FhirResourceStore(engine)
    store.save({"resourceType": "Patient", "id": "a"})
    store.save({"resourceType": "Patient", "id": "b"})
    store.save({"resourceType": "Observation", "id": "c"})
    assert store.ids("Patient") == {"a", "b"}
    store.remove("Patient", "a")
    store.remove("Patient", "a")  # removing what is gone is fine
    assert store.current("Patient", "a") is None
    assert store.ids("Patient") == {"b"}


def test_bases_are_replaced_and_forgotten_by_scope(engine: Engine) -> None:
    states = StoreRecordStates(engine)
    states.agree("fhir:x", "Patient", [SyncBase("a", {"gender": "female"})], [])
    states.agree("fhir:x", "Patient", [SyncBase("a", {"gender": "other"}),
                                       SyncBase("b", {})], [])  # fmt: skip
    states.agree("fhir:y", "Patient", [SyncBase("a", {"gender": "male"})], [])
    assert states.bases("fhir:x", "Patient") == {
        "a": SyncBase("a", {"gender": "other"}),
        "b": SyncBase("b", {}),
    }
    states.agree("fhir:x", "Patient", [], ["b"])
    assert set(states.bases("fhir:x", "Patient")) == {"a"}
    assert states.bases("fhir:y", "Patient")["a"].resource == {"gender": "male"}
    assert len(states.fingerprints("fhir:x", "Patient")) == 1  # each base fingerprinted


def test_positions_are_kept_per_type(engine: Engine) -> None:
    states = StoreRecordStates(engine)
    assert states.position("fhir:x", "Patient") is None
    states.save_position("fhir:x", "Patient", {"remote": "2026-01-01T00:00:00Z", "local": None})
    states.save_position("fhir:x", "Patient", {"remote": "2026-01-02T00:00:00Z", "local": None})
    assert states.position("fhir:x", "Patient") == {"remote": "2026-01-02T00:00:00Z",
                                                    "local": None}  # fmt: skip
    assert states.position("fhir:x", "Observation") is None


def test_latest_decision_of_a_record(engine: Engine) -> None:
    conflicts = ConflictStore(engine)
    assert conflicts.latest("fhir:x", "Patient", "a") is None
    fields = [{"field": "gender", "local": "other", "remote": "unknown", "base": "female"}]
    first = conflicts.open("fhir:x", "Patient", "a", fields)
    opened = conflicts.latest("fhir:x", "Patient", "a")
    assert opened is not None
    assert (opened.conflict_id, opened.status, opened.fields) == (first, "open", fields)
    conflicts.resolve(first, Strategy.USE_LOCAL, actor="tester")
    decided = conflicts.latest("fhir:x", "Patient", "a")
    assert decided is not None
    assert (decided.status, decided.value) == ("resolved", {"gender": "other"})
    second = conflicts.open("fhir:x", "Patient", "a", fields)
    latest = conflicts.latest("fhir:x", "Patient", "a")
    assert latest is not None
    assert latest.conflict_id == second
    assert conflicts.latest("fhir:x", "Patient", "b") is None


def test_a_synced_version_keeps_the_message_that_made_the_resource(engine: Engine) -> None:
    store = FhirResourceStore(engine)
    with engine.begin() as conn:
        store.put(conn, [(7, {"resourceType": "Patient", "id": "a"})])
    saved = store.save({"resourceType": "Patient", "id": "a", "gender": "other"})
    assert saved["meta"]["versionId"] == "2"
    with engine.connect() as conn:
        kept = conn.execute(select(fhir_resources.c.message_id)).scalar_one()
    assert kept == 7
