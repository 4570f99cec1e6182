"""Scheduling through the worklist service: the step is stored, a study it names gets
a ``scheduled`` event, and the SCP's worklist answers from the same store."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from pacsync import bootstrap
from pacsync.bootstrap import worklist
from pacsync.config import Settings
from pacsync.db.study_events import StudyEvents
from pacsync.domain.study_workflow import Status
from pacsync.errors import InvalidRequest

GIVEN = {"accession_number": "ACC1", "patient_id": "P1", "patient_name": "DOE^JOHN",
         "modality": "CT", "station_ae": "CT1", "start": "2026-11-24T09:30"}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> bootstrap.Store:
    settings = Settings(_env_file=None, home=tmp_path / "home", database_url=None,  # type: ignore[call-arg]
                        secret_key=None)  # fmt: skip
    return bootstrap.store(settings)


def test_a_step_naming_its_study_puts_scheduled_on_the_timeline(store: bootstrap.Store) -> None:
    added = worklist.schedule(store, {**GIVEN, "study_uid": "2.25.7001"}, source="hl7")
    workflow = StudyEvents(store.engine).workflow("2.25.7001")
    assert workflow.status is Status.SCHEDULED
    (event,) = workflow.events
    assert event.source == "worklist"
    expected = {"procedure": added.id, "accession": "ACC1", "modality": "CT", "station": "CT1",
                "start": "2026-11-24T09:30:00", "by": "hl7"}  # fmt: skip
    assert event.detail == expected


def test_a_step_without_a_study_puts_nothing_on_a_timeline(store: bootstrap.Store) -> None:
    added = worklist.schedule(store, GIVEN, source="cli")
    assert added.procedure.study_uid is None
    assert StudyEvents(store.engine).timeline("") == []


def test_bad_input_stores_nothing(store: bootstrap.Store) -> None:
    with pytest.raises(InvalidRequest):
        worklist.schedule(store, {**GIVEN, "modality": "C-T", "study_uid": "2.25.1"}, source="api")
    assert StudyEvents(store.engine).timeline("2.25.1") == []
    answer = worklist.answering(store)
    assert list(answer(Dataset())) == []


def test_the_scp_worklist_answers_from_the_store(store: bootstrap.Store) -> None:
    worklist.schedule(store, GIVEN, source="cli")
    cancelled = worklist.schedule(store, {**GIVEN, "accession_number": "ACC2"}, source="cli")
    worklist.cancel(store, cancelled.id)
    query = Dataset()
    query.AccessionNumber = ""
    item = Dataset()
    item.ScheduledStationAETitle = "CT1"
    query.ScheduledProcedureStepSequence = Sequence([item])
    found = list(worklist.answering(store)(query))
    assert [ds.AccessionNumber for ds in found] == ["ACC1"]
