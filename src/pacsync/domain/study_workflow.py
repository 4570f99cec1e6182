"""A study's workflow as pacsync observed it: the events of its timeline and the
status they sum up to (the seed's ``getWorkflowStatus``).

Events, each from a source (an archive or a DICOM node):

- ``scheduled``: a procedure for the study appeared in a worklist;
- ``received``: instances arrived at the SCP; one entry per study and source,
  with the first and the last instance's times and the running count;
- ``indexed``: an archive scan indexed instances of the study;
- ``retrieved``: a C-MOVE or C-GET of the study from a node completed;
- ``sent``: a C-STORE of the study to a node completed.

DICOM never says that a study is complete; like other archives, pacsync calls a
study still ``receiving`` until no instance has arrived for ``STABLE_AGE``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Event(StrEnum):
    SCHEDULED = "scheduled"
    RECEIVED = "received"
    INDEXED = "indexed"
    RETRIEVED = "retrieved"
    SENT = "sent"


class Status(StrEnum):
    UNKNOWN = "unknown"  # in the index, but nothing was observed happening to it
    SCHEDULED = "scheduled"
    RECEIVING = "receiving"
    RECEIVED = "received"
    RETRIEVED = "retrieved"
    INDEXED = "indexed"
    SENT = "sent"


# received events accumulate: one entry per study and source, not one per instance
ACCUMULATED = frozenset({Event.RECEIVED})
STABLE_AGE = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class StudyEvent:
    study_uid: str
    event: Event
    source: str  # the archive or node
    at: dt.datetime  # when it happened (received: the last instance); naive UTC
    first_at: dt.datetime | None = None  # received: the first instance
    instances: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": self.event.value,
            "source": self.source,
            "at": self.at.isoformat(),
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "instances": self.instances,
            "detail": self.detail,
        }


def status(events: Sequence[StudyEvent], now: dt.datetime) -> Status:
    """What the latest event says: ``receiving`` while instances still arrive."""
    if not events:
        return Status.UNKNOWN
    latest = max(events, key=lambda e: e.at)
    if latest.event is Event.RECEIVED:
        return Status.RECEIVING if now - latest.at < STABLE_AGE else Status.RECEIVED
    return Status(latest.event.value)


def ordered(events: Sequence[StudyEvent]) -> list[StudyEvent]:
    """Oldest first (a received entry at its first instance)."""
    return sorted(events, key=lambda e: (e.first_at or e.at, e.at))


@dataclass(frozen=True)
class Workflow:
    """A study's timeline and what it sums up to."""

    study_uid: str
    status: Status
    indexed_instances: int | None  # across every archive; None: in no archive's index
    events: list[StudyEvent]

    @classmethod
    def of(
        cls,
        study_uid: str,
        events: Sequence[StudyEvent],
        indexed_instances: int | None,
        now: dt.datetime,
    ) -> Workflow:
        return cls(study_uid, status(events, now), indexed_instances, ordered(events))

    def as_dict(self) -> dict[str, Any]:
        return {
            "study_uid": self.study_uid,
            "status": self.status.value,
            "indexed_instances": self.indexed_instances,
            "events": [e.as_dict() for e in self.events],
        }
