"""A study's status from its timeline."""

from __future__ import annotations

import datetime as dt

from pacsync.domain.study_workflow import STABLE_AGE, Event, Status, StudyEvent, ordered, status

STUDY = "1.2.840.99.1"
T0 = dt.datetime(2026, 3, 1, 8, 0)


def event(kind: Event, minutes: float, first: float | None = None) -> StudyEvent:
    at = T0 + dt.timedelta(minutes=minutes)
    first_at = None if first is None else T0 + dt.timedelta(minutes=first)
    return StudyEvent(STUDY, kind, "inbox", at, first_at=first_at, instances=1)


def test_a_study_still_receiving_until_no_instance_arrived_for_the_stable_age() -> None:
    received = [event(Event.SCHEDULED, 0), event(Event.RECEIVED, 10, first=5)]
    just_after = T0 + dt.timedelta(minutes=10) + STABLE_AGE / 2
    assert status(received, just_after) is Status.RECEIVING
    assert status(received, just_after + STABLE_AGE) is Status.RECEIVED


def test_the_latest_event_gives_the_status() -> None:
    events = [event(Event.RECEIVED, 1, first=0), event(Event.INDEXED, 2), event(Event.SENT, 3)]
    assert status(events, T0 + dt.timedelta(hours=1)) is Status.SENT
    assert status([event(Event.SCHEDULED, 0)], T0) is Status.SCHEDULED
    assert status([], T0) is Status.UNKNOWN


def test_a_received_entry_is_ordered_by_its_first_instance() -> None:
    indexed, received = event(Event.INDEXED, 3), event(Event.RECEIVED, 9, first=1)
    assert ordered([indexed, received]) == [received, indexed]
