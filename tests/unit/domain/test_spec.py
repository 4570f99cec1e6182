"""Pipeline specifications (pacsync.domain.spec)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from pacsync.domain.spec import PipelineSpec

OWNER: dict[str, Any] = {
    "source": {"table": "PropertyOwner", "schema": "dbo", "key": ["OwnerID"]},
    "target": {"table": "owner"},
    "fields": {"owner_id": {"from": "OwnerID", "type": "integer"}, "name": {"from": "Name"}},
}


def with_reference(entity: str, field: str = "owner_id") -> dict[str, Any]:
    return {
        "source": {"table": entity.title(), "key": ["ID"]},
        "target": {"table": entity},
        "fields": {"id": {"from": "ID"}, field: {"from": "Ref"}},
        "validate": [{"field": field, "rule": "reference", "entity": "owner"}],
    }


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "county-assessor",
        "connections": {
            "legacy": {"url": "mssql+pymssql://u:p@legacy/assess"},
            "store": {"url": "postgresql+psycopg://u:p@store/assess"},
        },
        "source": {"connection": "legacy"},
        "destination": {"connection": "store", "schema": "assess"},
        "entities": {"owner": copy.deepcopy(OWNER)},
    }
    doc.update(changes)
    return doc


def errors(doc: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        PipelineSpec.model_validate(doc)
    return str(caught.value)


def test_a_minimal_pipeline_and_its_defaults() -> None:
    spec = PipelineSpec.model_validate(document())
    owner = spec.entities["owner"]
    assert owner.source.db_schema == "dbo"
    assert spec.destination.db_schema == "assess"
    assert spec.destination.delete_mode == "soft"
    assert owner.strategy == "hash_diff"
    assert owner.deletes == "detect"
    assert owner.fields["owner_id"].source == "OwnerID"
    assert owner.key_fields == ["owner_id"]
    assert spec.batch_size_for("owner") == 5000


def test_entity_batch_size_overrides_the_pipeline() -> None:
    doc = document(batch_size=100)
    doc["entities"]["owner"]["batch_size"] = 20
    doc["entities"]["other"] = {**copy.deepcopy(OWNER), "target": {"table": "other"}}
    spec = PipelineSpec.model_validate(doc)
    assert spec.batch_size_for("owner") == 20
    assert spec.batch_size_for("other") == 100


@pytest.mark.parametrize(
    "path",
    [
        (),
        ("entities", "owner"),
        ("entities", "owner", "fields", "name"),
        ("entities", "owner", "source"),
        ("destination",),
        ("connections", "legacy"),
    ],
)
def test_unknown_keys_are_errors(path: tuple[str, ...]) -> None:
    doc = document()
    node = doc
    for part in path:
        node = node[part]
    node["colour"] = "blue"
    assert "colour" in errors(doc)
    assert "Extra inputs are not permitted" in errors(doc)


def test_field_aliases_must_be_used_as_spelled() -> None:
    doc = document()
    doc["entities"]["owner"]["fields"]["name"] = {"form": "Name"}
    assert "form" in errors(doc)


def test_cursor_strategy_needs_a_cursor() -> None:
    doc = document()
    doc["entities"]["owner"]["strategy"] = "cursor"
    assert "strategy 'cursor' needs a 'cursor' section" in errors(doc)
    doc["entities"]["owner"]["cursor"] = {"column": "Modified", "overlap": 5}
    spec = PipelineSpec.model_validate(doc)
    cursor = spec.entities["owner"].cursor
    assert cursor is not None
    assert (cursor.column, cursor.overlap, cursor.kind) == ("Modified", 5, "auto")


def test_unknown_strategy_and_delete_mode() -> None:
    doc = document()
    doc["entities"]["owner"]["strategy"] = "guess"
    assert "strategy" in errors(doc)
    doc = document(destination={"connection": "store", "delete_mode": "archive"})
    assert "delete_mode" in errors(doc)


def test_reference_to_an_unknown_entity() -> None:
    doc = document()
    doc["entities"]["parcel"] = with_reference("parcel")
    doc["entities"]["parcel"]["validate"][0]["entity"] = "landlord"
    message = errors(doc)
    assert "entity 'parcel' references unknown entity 'landlord'" in message
    assert "entities are: owner, parcel" in message


def test_undefined_connection() -> None:
    message = errors(document(source={"connection": "nowhere"}))
    assert "source connection 'nowhere' is not defined" in message


def test_validation_rule_on_an_unknown_field() -> None:
    doc = document()
    doc["entities"]["owner"]["validate"] = [{"field": "email", "rule": "required"}]
    assert "validation rule on unknown field 'email'" in errors(doc)


def test_key_column_must_be_mapped() -> None:
    doc = document()
    doc["entities"]["owner"]["fields"] = {"name": {"from": "Name"}}
    assert "key column 'OwnerID' must be mapped" in errors(doc)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"from": "A", "expr": "1"}, "exactly one of"),
        ({"concat": ["A"], "split": {"from": "A"}}, "exactly one of"),
        ({"type": "integer"}, "needs one of"),
    ],
)
def test_a_field_takes_one_origin(field: dict[str, Any], message: str) -> None:
    doc = document()
    doc["entities"]["owner"]["fields"]["extra"] = field
    assert message in errors(doc)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"rule": "regex"}, "rule 'regex' needs 'pattern'"),
        ({"rule": "enum"}, "rule 'enum' needs 'values'"),
        ({"rule": "reference"}, "rule 'reference' needs 'entity'"),
        ({"rule": "range"}, "rule 'range' needs 'min' or 'max'"),
        ({"rule": "length"}, "rule 'length' needs 'min' or 'max'"),
        ({"rule": "sometimes"}, "rule"),
    ],
)
def test_rules_need_their_arguments(rule: dict[str, Any], message: str) -> None:
    doc = document()
    doc["entities"]["owner"]["validate"] = [{"field": "name", **rule}]
    assert message in errors(doc)


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"batch_size": 5}, "batch_size"),
        ({"batch_size": 1_000_000}, "batch_size"),
        ({"timeout": 0}, "timeout"),
        ({"version": 2}, "version"),
        ({"entities": {}}, "entities"),
    ],
)
def test_top_level_limits(changes: dict[str, Any], where: str) -> None:
    assert where in errors(document(**changes))


def test_spec_is_frozen() -> None:
    spec = PipelineSpec.model_validate(document())
    with pytest.raises(ValidationError):
        spec.name = "other"  # type: ignore[misc]


def test_ordered_entities_puts_referenced_entities_first() -> None:
    doc = document()
    entities = {
        "structure": with_reference("structure"),
        "parcel": with_reference("parcel"),
        "owner": copy.deepcopy(OWNER),
        "note": {**copy.deepcopy(OWNER), "target": {"table": "note"}},
    }
    entities["structure"]["validate"][0]["entity"] = "parcel"
    doc["entities"] = entities
    order = PipelineSpec.model_validate(doc).ordered_entities()
    assert sorted(order) == sorted(entities)
    assert order.index("owner") < order.index("parcel") < order.index("structure")


def test_self_reference_is_not_a_cycle() -> None:
    doc = document()
    doc["entities"]["owner"]["fields"]["parent"] = {"from": "ParentID"}
    doc["entities"]["owner"]["validate"] = [
        {"field": "parent", "rule": "reference", "entity": "owner"}
    ]
    assert PipelineSpec.model_validate(doc).ordered_entities() == ["owner"]


def test_reference_cycle_is_detected() -> None:
    doc = document()
    doc["entities"]["owner"]["fields"]["parcel"] = {"from": "ParcelID"}
    doc["entities"]["owner"]["validate"] = [
        {"field": "parcel", "rule": "reference", "entity": "parcel"}
    ]
    doc["entities"]["parcel"] = with_reference("parcel")
    spec = PipelineSpec.model_validate(doc)
    with pytest.raises(ValueError, match="reference cycle: owner -> parcel -> owner"):
        spec.ordered_entities()
