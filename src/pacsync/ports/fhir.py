"""The ports of EHR sync over FHIR R4: the server, the local FHIR-shaped store, the
base versions a three-way compare needs, and where conflicts wait for a decision."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pacsync.domain.fhir_resource import Versioned

FhirParams = Mapping[str, str] | Sequence[tuple[str, str]]


class FhirServer(Protocol):
    """An EHR's FHIR R4 API as a sync reads and writes it (pacsync.connectors.fhir's
    FhirClient; MemoryFhirServer in memory).  Failures are pacsync's FHIR errors:
    PACS-702 not found, PACS-704 an If-Match that found another version, PACS-705/706
    transient."""

    def read(self, resource_type: str, resource_id: str) -> Versioned: ...

    def search(
        self, resource_type: str, params: FhirParams | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every match, page after page."""
        ...

    def changed_since(
        self, resource_type: str, since: dt.datetime, params: FhirParams | None = None
    ) -> Iterator[dict[str, Any]]:
        """Resources changed after ``since`` (``_lastUpdated``), oldest first."""
        ...

    def deleted_since(self, resource_type: str, since: dt.datetime) -> Iterator[str]:
        """Ids of resources of the type deleted after ``since`` and not written again
        (the type's history); nothing from a server that keeps no history."""
        ...

    def create(
        self, resource: dict[str, Any], *, if_none_exist: FhirParams | None = None
    ) -> Versioned:
        """A new resource; with ``if_none_exist`` the one that matches, if any (200)."""
        ...

    def update(self, resource: dict[str, Any], *, if_match: str | None = None) -> Versioned:
        """Write the resource at its id; with ``if_match`` only over that version."""
        ...

    def conditional_update(self, resource: dict[str, Any], criteria: FhirParams) -> Versioned:
        """``PUT Type?criteria``: update the one match, create (at the resource's id) when
        none; PACS-707 when the match has another id, PACS-704 for several matches."""
        ...

    def delete(self, resource_type: str, resource_id: str) -> None:
        """Gone (deleting what is gone already is fine)."""
        ...


class LocalFhirResources(Protocol):
    """pacsync's own FHIR-shaped resources as a sync with an EHR reads and writes them.
    A resource read has ``meta.versionId`` and ``meta.lastUpdated`` of the local store."""

    def current(self, resource_type: str, resource_id: str) -> dict[str, Any] | None: ...

    def ids(self, resource_type: str) -> set[str]:
        """The id of every resource of the type held."""
        ...

    def changed(
        self, resource_type: str, since: dt.datetime | None, patient: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Resources of the type changed after ``since`` (None: all), of ``patient`` only
        when given (the Patient itself, or what refers to it as subject or patient)."""
        ...

    def save(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Write the resource at its id (a new local version); as read back."""
        ...

    def remove(self, resource_type: str, resource_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SyncBase:
    """The version of a record both sides last agreed on (its elements), by id."""

    resource_id: str
    resource: dict[str, Any]


class SyncBases(Protocol):
    """Base versions and reading positions of a sync, by scope (the sync's pipeline
    name) and resource type: the record state of a three-way compare."""

    def bases(self, scope: str, resource_type: str) -> dict[str, SyncBase]: ...

    def agree(
        self, scope: str, resource_type: str, agreed: Sequence[SyncBase], gone: Sequence[str]
    ) -> None:
        """Store the agreed versions and forget the records gone from both sides."""
        ...

    def position(self, scope: str, resource_type: str) -> dict[str, Any] | None: ...

    def save_position(self, scope: str, resource_type: str, position: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class SyncDecision:
    """The latest conflict of a record: open (waiting), or decided with the record the
    decision settled on (``value``: elements; None for a conflict ignored)."""

    conflict_id: int
    status: str  # open, resolved, ignored
    fields: list[dict[str, Any]]
    value: Any


class SyncConflicts(Protocol):
    """Where records waiting for a person's decision go (the store's conflicts)."""

    def latest(self, scope: str, resource_type: str, resource_id: str) -> SyncDecision | None: ...

    def open(
        self, scope: str, resource_type: str, resource_id: str, fields: list[dict[str, Any]]
    ) -> int: ...
