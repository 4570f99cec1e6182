"""pacsync's FHIR resources read as rows of a pipeline entity."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from pacsync.db.fhir_resources import FhirResourceStore
from pacsync.db.resource_source import ResourceSource
from pacsync.domain.resource_spec import value_at
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import UnsupportedFeature


def _pipeline(**source: Any) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "patients",
            "connections": {"store": {"url": "pacsync:store"}, "dw": {"url": "sqlite://"}},
            "source": {"connection": "store"},
            "destination": {"connection": "dw"},
            "entities": {
                "patients": {
                    "source": {
                        "resources": "Patient",
                        "columns": {"id": "id", "family": "name.0.family", "name": "name.0"},
                        **source,
                    },
                    "target": {"table": "patients"},
                    "fields": {"id": {"from": "id"}, "family": {"from": "family"}},
                }
            },
        }
    )


def _patient(rid: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": rid, "name": [{"family": family, "given": ["A"]}]}


def test_rows_are_read_in_id_order_a_batch_at_a_time_with_their_fingerprint(
    engine: Engine,
) -> None:
    store = FhirResourceStore(engine)
    with engine.begin() as conn:
        store.put(conn, [(None, _patient(f"p{n}", f"F{n}")) for n in (3, 1, 2)])
        store.put(conn, [(None, {"resourceType": "Encounter", "id": "e1"})])
    source = ResourceSource(_pipeline(), engine, connection_name="store")

    batches = list(source.read("patients", after_key=None, batch_size=2))
    later = list(source.read("patients", after_key=("p1",), batch_size=10))

    assert [[r[:2] for r in b] for b in batches] == [[("p1", "F1"), ("p2", "F2")], [("p3", "F3")]]
    assert batches[0][0][2] == '{"family":"F1","given":["A"]}'  # an element as its JSON
    assert [r[0] for b in later for r in b] == ["p2", "p3"]
    assert source.count("patients") == 3
    assert source.key_range("patients") == ("p1", "p3")
    fingerprints = dict(r for b in source.read_fingerprints("patients", 10) for r in b)
    assert fingerprints["p2"] == batches[0][1][-1]
    assert [r[0] for r in source.read_keys("patients", [("p3",), ("nope",)])] == ["p3"]


def test_a_changed_resource_changes_its_fingerprint(engine: Engine) -> None:
    store = FhirResourceStore(engine)
    source = ResourceSource(_pipeline(), engine, connection_name="store")
    with engine.begin() as conn:
        store.put(conn, [(None, _patient("p1", "Old"))])
    before = source.read_keys("patients", [("p1",)])[0][-1]
    with engine.begin() as conn:
        store.put(conn, [(None, _patient("p1", "New"))])
    assert source.read_keys("patients", [("p1",)])[0][-1] != before


def test_resources_have_no_cursor_or_change_feed(engine: Engine) -> None:
    source = ResourceSource(_pipeline(), engine, connection_name="store")
    with pytest.raises(UnsupportedFeature, match="no cursor or change feed"):
        source.cursor_max("patients")


def test_paths_reach_keys_and_list_positions() -> None:
    resource = _patient("p1", "Doe")
    assert value_at(resource, "name.0.given.0") == "A"
    assert value_at(resource, "name.1.family") is None
    assert value_at(resource, "id.0") is None
    assert value_at(resource, "telecom.0.value") is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"columns": {"id": "id", "x": "name..family"}}, "not a path such as name.0.family"),
        ({"columns": {"id": "name.0.family"}}, "must be the resource's id"),
        ({"resources": "patient"}, "should match pattern"),
    ],
)
def test_a_wrong_resource_source_is_refused(source: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _pipeline(**source)


def test_an_entity_of_resources_is_compared_whole() -> None:
    spec = _pipeline().model_dump(by_alias=True)
    spec["entities"]["patients"]["strategy"] = "cursor"
    spec["entities"]["patients"]["cursor"] = {"column": "family"}
    with pytest.raises(ValidationError, match="no cursor or change feed: strategy hash_diff"):
        PipelineSpec.model_validate(spec)
