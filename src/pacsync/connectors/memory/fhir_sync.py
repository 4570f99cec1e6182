"""In-memory fakes of what a FHIR sync keeps on pacsync's side: the local resources
(:class:`pacsync.ports.LocalFhirResources`), base versions and reading positions
(:class:`pacsync.ports.SyncBases`) and conflicts (:class:`pacsync.ports.SyncConflicts`).
Their dicts are there to assert on."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pacsync.ports import SyncBase, SyncDecision

JSON = dict[str, Any]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _instant(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _of_patient(resource: JSON, patient: str) -> bool:
    if resource.get("resourceType") == "Patient":
        return resource.get("id") == patient
    for name in ("subject", "patient"):
        reference = str((resource.get(name) or {}).get("reference") or "")
        if reference in (patient, f"Patient/{patient}"):
            return True
    return False


class MemoryLocalFhir:
    """Resources by (type, id), each write a new version stamped by ``clock``."""

    def __init__(self, clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self.clock = clock
        self.resources: dict[tuple[str, str], JSON] = {}
        self.changed_at: dict[tuple[str, str], dt.datetime] = {}

    def current(self, resource_type: str, resource_id: str) -> JSON | None:
        found = self.resources.get((resource_type, resource_id))
        return copy.deepcopy(found) if found else None

    def ids(self, resource_type: str) -> set[str]:
        return {rid for kind, rid in self.resources if kind == resource_type}

    def changed(
        self, resource_type: str, since: dt.datetime | None, patient: str | None = None
    ) -> Iterator[JSON]:
        keys = sorted(
            (k for k in self.resources if k[0] == resource_type),
            key=lambda k: self.changed_at[k],
        )
        for key in keys:
            resource = self.resources[key]
            if since is not None and self.changed_at[key] <= since:
                continue
            if patient is None or _of_patient(resource, patient):
                yield copy.deepcopy(resource)

    def save(self, resource: JSON) -> JSON:
        key = (str(resource["resourceType"]), str(resource["id"]))
        held = self.resources.get(key)
        version = int(held["meta"]["versionId"]) + 1 if held else 1
        now = self.clock()
        stored = {
            **copy.deepcopy(resource),
            "meta": {"versionId": str(version), "lastUpdated": _instant(now)},
        }
        self.resources[key] = stored
        self.changed_at[key] = now
        return copy.deepcopy(stored)

    def remove(self, resource_type: str, resource_id: str) -> None:
        self.resources.pop((resource_type, resource_id), None)
        self.changed_at.pop((resource_type, resource_id), None)


class MemorySyncBases:
    """``bases[(scope, type)][id]`` and ``positions[(scope, type)]``."""

    def __init__(self) -> None:
        self.bases_: dict[tuple[str, str], dict[str, SyncBase]] = {}
        self.positions: dict[tuple[str, str], JSON] = {}

    def bases(self, scope: str, resource_type: str) -> dict[str, SyncBase]:
        return copy.deepcopy(self.bases_.get((scope, resource_type), {}))

    def agree(
        self, scope: str, resource_type: str, agreed: Sequence[SyncBase], gone: Sequence[str]
    ) -> None:
        held = self.bases_.setdefault((scope, resource_type), {})
        for base in agreed:
            held[base.resource_id] = copy.deepcopy(base)
        for rid in gone:
            held.pop(rid, None)

    def position(self, scope: str, resource_type: str) -> JSON | None:
        return copy.deepcopy(self.positions.get((scope, resource_type)))

    def save_position(self, scope: str, resource_type: str, position: JSON) -> None:
        self.positions[(scope, resource_type)] = copy.deepcopy(position)


class MemorySyncConflicts:
    """Conflicts in the order opened; ``decide`` stands in for a person's decision."""

    def __init__(self) -> None:
        self.items: list[tuple[tuple[str, str, str], SyncDecision]] = []

    def latest(self, scope: str, resource_type: str, resource_id: str) -> SyncDecision | None:
        key = (scope, resource_type, resource_id)
        found = [d for k, d in self.items if k == key]
        return found[-1] if found else None

    def open(self, scope: str, resource_type: str, resource_id: str, fields: list[JSON]) -> int:
        conflict_id = len(self.items) + 1
        decision = SyncDecision(conflict_id, "open", copy.deepcopy(fields), None)
        self.items.append(((scope, resource_type, resource_id), decision))
        return conflict_id

    def decide(self, conflict_id: int, value: Any, status: str = "resolved") -> None:
        key, held = self.items[conflict_id - 1]
        self.items[conflict_id - 1] = (
            key,
            SyncDecision(conflict_id, status, held.fields, copy.deepcopy(value)),
        )

    @property
    def open_count(self) -> int:
        return sum(1 for _, d in self.items if d.status == "open")


if TYPE_CHECKING:
    from pacsync.ports import LocalFhirResources, SyncBases, SyncConflicts

    def _conforms() -> tuple[LocalFhirResources, SyncBases, SyncConflicts]:
        return MemoryLocalFhir(), MemorySyncBases(), MemorySyncConflicts()
