"""FHIR resources kept by type and id: inserted once, replaced and versioned after."""

from __future__ import annotations

from sqlalchemy import Engine

from pacsync.db.fhir_resources import FhirResourceStore


def _patient(family: str) -> dict[str, object]:
    return {"resourceType": "Patient", "id": "hosp-p100", "name": [{"family": family}]}


def test_a_resource_is_inserted_then_replaced_with_a_new_version(engine: Engine) -> None:
    store = FhirResourceStore(engine)
    observation = {"resourceType": "Observation", "id": "lab-1-1", "status": "final"}
    with engine.begin() as conn:
        assert store.put(conn, [(1, _patient("Doe")), (1, observation)]) == 2
    first = store.get("Patient", "hosp-p100")
    assert first is not None
    assert first["name"] == [{"family": "Doe"}]
    assert first["meta"]["versionId"] == "1"
    with engine.begin() as conn:
        store.put(conn, [(2, _patient("Roe")), (3, _patient("Moe"))])  # later ones win
    second = store.get("Patient", "hosp-p100")
    assert second is not None
    assert second["name"] == [{"family": "Moe"}]
    assert second["meta"]["versionId"] == "2"
    assert store.counts() == {"Observation": 1, "Patient": 1}
    assert [r["id"] for r in store.list("Observation")] == ["lab-1-1"]
    assert store.get("Patient", "nobody") is None


def test_nothing_to_put_writes_nothing(engine: Engine) -> None:
    store = FhirResourceStore(engine)
    with engine.begin() as conn:
        assert store.put(conn, []) == 0
    assert store.counts() == {}
