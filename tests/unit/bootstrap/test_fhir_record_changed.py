"""``record.changed`` from a FHIR sync: one event per record for a patient or small
incremental sync, one summary for a full sync or a large run; a notification's
resource found its patient from the server's copy, else pacsync's."""

from __future__ import annotations

from typing import Any

from pacsync.bootstrap.fhir_sync import (
    CHANGES_TOLD_ONE_BY_ONE,
    ChangeAnnouncer,
    patient_of_focus,
)
from pacsync.connectors.memory import MemoryFhirServer
from pacsync.connectors.memory.fhir_sync import MemoryLocalFhir
from pacsync.sync.fhir_request import RecordChange, SyncMode


class Events:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, dict[str, Any], str | None]] = []

    def emit(self, event: str, data: dict[str, Any], pipeline: str | None = None) -> list[int]:
        self.emitted.append((event, data, pipeline))
        return [len(self.emitted)]

    def record_conflict(self, *_args: Any) -> int:
        return 1


def change(n: int, direction: str = "inbound", kind: str = "updated") -> RecordChange:
    return RecordChange("Patient", f"p{n}", direction, kind)


def test_a_patient_sync_tells_each_record() -> None:
    events = Events()
    announcer = ChangeAnnouncer(events, "fhir:ehr", SyncMode.PATIENT, "job-1")
    announcer(change(1, "outbound", "created"))
    announcer(change(2, "inbound", "deleted"))
    assert announcer.flush() == 2
    assert events.emitted == [
        ("record.changed", {"mode": "patient", "job_id": "job-1", "summary": False,
                            "resource_type": "Patient", "resource_id": "p1",
                            "direction": "outbound", "change": "created"}, "fhir:ehr"),
        ("record.changed", {"mode": "patient", "job_id": "job-1", "summary": False,
                            "resource_type": "Patient", "resource_id": "p2",
                            "direction": "inbound", "change": "deleted"}, "fhir:ehr"),
    ]  # fmt: skip
    assert announcer.flush() == 0  # told once


def test_a_full_sync_or_a_large_run_tells_a_summary() -> None:
    for mode, count in ((SyncMode.FULL, 3), (SyncMode.INCREMENTAL, CHANGES_TOLD_ONE_BY_ONE + 1)):
        events = Events()
        announcer = ChangeAnnouncer(events, "fhir:ehr", mode, None)
        for n in range(count):
            announcer(change(n, kind="created" if n % 2 else "updated"))
        announcer(RecordChange("Observation", "o1", "outbound", "deleted"))
        assert announcer.flush() == 1
        ((event, data, pipeline),) = events.emitted
        assert (event, pipeline, data["summary"], data["records"]) == (
            "record.changed", "fhir:ehr", True, count + 1)  # fmt: skip
        assert data["by_type"]["Observation"] == {"outbound": {"deleted": 1}}
        assert sum(data["by_type"]["Patient"]["inbound"].values()) == count


def test_nothing_is_told_without_events_or_changes() -> None:
    assert ChangeAnnouncer(None, "fhir:ehr", SyncMode.PATIENT, None).flush() == 0
    assert ChangeAnnouncer(Events(), "fhir:ehr", SyncMode.PATIENT, None).flush() == 0


def test_a_focus_finds_its_patient_on_the_server_else_locally() -> None:
    server, local = MemoryFhirServer(), MemoryLocalFhir()
    server.update({"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/a"}})
    local.save({"resourceType": "Encounter", "id": "e2", "subject": {"reference": "Patient/b"}})
    assert patient_of_focus(server, local, "Encounter/e1") == "a"
    assert patient_of_focus(server, local, "Encounter/e2") == "b"  # deleted on the server
    assert patient_of_focus(server, local, "Encounter/e3") is None
    assert patient_of_focus(server, local, "Patient/c") == "c"
