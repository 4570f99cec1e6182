"""A progress sink that records every call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pacsync.domain.records import EntityCounts

ProgressKind = Literal["entity_started", "batch_done", "entity_done"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One call to a progress sink; ``counts`` is a snapshot taken at the call."""

    kind: ProgressKind
    entity: str
    total: int | None = None
    mode: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)


class RecordingProgress:
    """A progress sink that remembers every call in order."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def kinds(self) -> list[ProgressKind]:
        return [e.kind for e in self.events]

    def entity_started(self, entity: str, total: int | None, mode: str) -> None:
        self.events.append(ProgressEvent("entity_started", entity, total=total, mode=mode))

    def batch_done(self, entity: str, counts: EntityCounts) -> None:
        self.events.append(ProgressEvent("batch_done", entity, counts=counts.as_dict()))

    def entity_done(self, entity: str, counts: EntityCounts) -> None:
        self.events.append(ProgressEvent("entity_done", entity, counts=counts.as_dict()))
