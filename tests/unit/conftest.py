"""Shared fixtures of the unit tests: small pipeline specs and the in-memory fakes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from pacsync.connectors.memory import (
    MemoryDeadLetters,
    MemoryDestination,
    MemorySource,
    RecordingProgress,
)
from pacsync.domain.records import EntityCounts
from pacsync.domain.spec import EntitySpec, PipelineSpec
from pacsync.sync.entity import EntitySync, Mode

PARCEL: dict[str, Any] = {
    "source": {"table": "Parcel", "schema": "dbo", "key": ["ParcelID"]},
    "target": {"table": "parcel"},
    "fields": {
        "parcel_id": {"from": "ParcelID", "type": "integer"},
        "address": {"from": "Address", "transforms": ["trim"]},
        "value": {"from": "Value", "type": "decimal"},
        "status": {"from": "Status", "default": "active"},
    },
}


def _parcel_entity(**overrides: Any) -> dict[str, Any]:
    """The parcel entity as YAML would declare it, with top-level items replaced."""
    entity = copy.deepcopy(PARCEL)
    entity.update(copy.deepcopy(overrides))
    return entity


def _pipeline(
    entities: dict[str, dict[str, Any]],
    *,
    delete_mode: str = "soft",
    batch_size: int = 10,
    **extra: Any,
) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "county",
            "connections": {
                "legacy": {"url": "mssql+pymssql://sync:secret@legacy/assess"},
                "store": {"url": "postgresql+psycopg://sync:secret@store/assess"},
            },
            "source": {"connection": "legacy"},
            "destination": {"connection": "store", "delete_mode": delete_mode},
            "batch_size": batch_size,
            "entities": entities,
            **extra,
        }
    )


def _parcel_record(number: int, **changes: Any) -> dict[str, Any]:
    """One source row of the Parcel table."""
    record: dict[str, Any] = {
        "ParcelID": number,
        "Address": f" {number} Main St ",
        "Value": f"{number * 1000}.00",
        "Status": "active",
        "Modified": number,
    }
    record.update(changes)
    return record


def _parcel_target(number: int, **changes: Any) -> dict[str, Any]:
    """The target row ``_parcel_record(number)`` maps to."""
    row: dict[str, Any] = {
        "parcel_id": number,
        "address": f"{number} Main St",
        "value": Decimal(number * 1000).quantize(Decimal("0.01")),
        "status": "active",
    }
    row.update(changes)
    return row


@dataclass
class World:
    """A pipeline spec with a source, a destination, dead letters and progress, all in memory."""

    spec: PipelineSpec
    source: MemorySource
    destination: MemoryDestination
    dead_letters: MemoryDeadLetters
    progress: RecordingProgress

    def sync(self, entity: str, mode: Mode = "incremental", **options: Any) -> EntityCounts:
        runner = EntitySync(
            self.spec,
            entity,
            source=self.source,
            destination=self.destination,
            dead_letters=self.dead_letters,
            progress=self.progress,
            **options,
        )
        return runner.run(mode)

    def respec(self, spec: PipelineSpec) -> None:
        """Carry on with a changed pipeline file over the same data."""
        self.spec = spec
        self.source.spec = spec
        self.destination.spec = spec

    def entity(self, name: str) -> EntitySpec:
        return self.spec.entities[name]


@pytest.fixture
def make_world() -> Callable[..., World]:
    def make(spec: PipelineSpec, tables: dict[str, list[dict[str, Any]]]) -> World:
        return World(
            spec=spec,
            source=MemorySource(spec, tables),
            destination=MemoryDestination(spec),
            dead_letters=MemoryDeadLetters(),
            progress=RecordingProgress(),
        )

    return make


@pytest.fixture
def parcels(make_world: Callable[..., World]) -> Callable[..., World]:
    """A world with one ``parcel`` entity (options passed to the entity) and ``rows`` parcels."""

    def make(rows: int = 25, *, delete_mode: str = "soft", **entity: Any) -> World:
        spec = _pipeline({"parcel": _parcel_entity(**entity)}, delete_mode=delete_mode)
        return make_world(spec, {"Parcel": [_parcel_record(n) for n in range(1, rows + 1)]})

    return make


@pytest.fixture
def make_pipeline() -> Callable[..., PipelineSpec]:
    """``make_pipeline({"name": entity_dict}, delete_mode=..., batch_size=..., **top_level)``."""
    return _pipeline


@pytest.fixture
def parcel_entity() -> Callable[..., dict[str, Any]]:
    """``parcel_entity(**overrides)``: the parcel entity dict with top-level items replaced."""
    return _parcel_entity


@pytest.fixture
def parcel_record() -> Callable[..., dict[str, Any]]:
    """``parcel_record(n, **column_changes)``: one source row of the Parcel table."""
    return _parcel_record


@pytest.fixture
def parcel_target() -> Callable[..., dict[str, Any]]:
    """``parcel_target(n, **field_changes)``: the target row parcel_record(n) maps to."""
    return _parcel_target
