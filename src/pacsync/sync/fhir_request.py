"""What a FHIR sync is asked to do (:class:`FhirSyncRequest`: its scope, resource types,
direction, mode and conflict policy) and what it reports: counts per resource type
and each record it wrote (:class:`RecordChange`); the state of one resource type's
run (:class:`TypeRun`) and small helpers its parts share."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pacsync.domain.fhir_conflicts import ConflictPolicy
from pacsync.errors import InvalidRequest
from pacsync.ports import SyncBase

JSON = dict[str, Any]


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BIDIRECTIONAL = "both"

    @classmethod
    def parse(cls, value: str) -> Direction:
        text = value.strip().lower()
        if text == "bidirectional":
            return cls.BIDIRECTIONAL
        try:
            return cls(text)
        except ValueError:
            raise InvalidRequest(
                f"unknown sync direction {value!r}", hint="Use inbound, outbound or both."
            ) from None

    @property
    def writes_local(self) -> bool:
        return self is not Direction.OUTBOUND

    @property
    def writes_remote(self) -> bool:
        return self is not Direction.INBOUND


class SyncMode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"
    PATIENT = "patient"


@dataclass
class TypeCounts:
    pulled: int = 0  # written locally
    pushed: int = 0  # written to the server
    deleted_local: int = 0
    deleted_remote: int = 0
    unchanged: int = 0
    conflicts: int = 0  # opened for review in this run
    waiting: int = 0  # still waiting for a decision (or ignored)
    retried: int = 0  # writes refused by If-Match, compared again

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass(frozen=True, slots=True)
class RecordChange:
    """A record a sync wrote: ``inbound`` to pacsync's store, ``outbound`` to the server;
    ``change`` is created, updated or deleted."""

    resource_type: str
    resource_id: str
    direction: str
    change: str


@dataclass(frozen=True)
class FhirSyncRequest:
    scope: str  # the sync's name in record state and conflicts (one per connection)
    resource_types: Sequence[str]
    direction: Direction = Direction.BIDIRECTIONAL
    mode: SyncMode = SyncMode.INCREMENTAL
    policy: ConflictPolicy = field(default_factory=ConflictPolicy)
    patient: str | None = None

    def __post_init__(self) -> None:
        if (self.mode is SyncMode.PATIENT) != (self.patient is not None):
            raise InvalidRequest("a patient sync needs its patient, and only it has one")


@dataclass
class TypeRun:
    """One resource type's sync under way: what it has agreed on and found gone."""

    request: FhirSyncRequest
    rtype: str
    counts: TypeCounts = field(default_factory=TypeCounts)
    agreed: list[SyncBase] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)


def whole_resource(rtype: str, rid: str, settled: JSON) -> JSON:
    """The resource of type ``rtype`` and id ``rid`` holding ``settled``'s elements."""
    return {"resourceType": rtype, "id": rid, **copy.deepcopy(settled)}


def sides(fields: Sequence[JSON]) -> list[tuple[Any, Any, Any]]:
    """What a conflict is about: each field's name and local and remote values."""
    return [(f.get("field"), f.get("local"), f.get("remote")) for f in fields]
