"""Modality Worklist identifiers read as matching keys, and answers holding what the
identifier asked for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from pacsync.connectors.dicom.worklist import answer, answers, keys_of
from pacsync.domain.worklist import NewProcedure, ProcedureStatus, ScheduledProcedure


def procedure(name: str = "DOE^JOHN") -> ScheduledProcedure:
    new = NewProcedure.of({
        "accession_number": "ACC1", "patient_id": "P1", "patient_name": name, "modality": "CT",
        "station_ae": "CT1", "start": "2026-11-24T09:30", "study_uid": "2.25.7001",
    }).with_defaults()  # fmt: skip
    return ScheduledProcedure(1, new, ProcedureStatus.SCHEDULED, "test", dt.datetime(2026, 1, 1))


def identifier(step: Dataset | None = None, **top: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    for keyword, value in {"PatientName": "", "PatientID": "", "AccessionNumber": "",
                           "PatientWeight": "", **top}.items():  # fmt: skip
        setattr(ds, keyword, value)
    ds.ScheduledProcedureStepSequence = Sequence([step] if step is not None else [])
    return ds


def step(**keys: str) -> Dataset:
    item = Dataset()
    for keyword in ("ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
                    "ScheduledProcedureStepStartTime", "Modality"):  # fmt: skip
        setattr(item, keyword, keys.pop(keyword, ""))
    for keyword, value in keys.items():
        setattr(item, keyword, value)
    return item


def test_matching_keys_come_from_the_top_level_and_the_step_item() -> None:
    ds = identifier(step(ScheduledStationAETitle="CT1",
                         ScheduledProcedureStepStartDate="20261124-20261125"),
                    PatientName="DOE^*")  # fmt: skip
    assert keys_of(ds) == {
        "PatientName": "DOE^*",
        "ScheduledStationAETitle": "CT1",
        "ScheduledProcedureStepStartDate": "20261124-20261125",
    }


def test_an_answer_holds_what_was_asked_with_unknown_keys_empty() -> None:
    ds = answer(identifier(step(ScheduledProcedureStepDescription="")), procedure())
    asked = {"PatientName", "PatientID", "PatientWeight", "AccessionNumber",
             "ScheduledProcedureStepSequence"}  # fmt: skip
    assert {e.keyword for e in ds} == asked
    assert (str(ds.PatientName), ds.PatientID, ds.AccessionNumber) == ("DOE^JOHN", "P1", "ACC1")
    assert ds.PatientWeight is None
    assert "SpecificCharacterSet" not in ds  # ASCII only
    item = ds.ScheduledProcedureStepSequence[0]
    assert item.ScheduledStationAETitle == "CT1"
    assert (item.ScheduledProcedureStepStartDate, item.ScheduledProcedureStepStartTime) == (
        "20261124", "093000")  # fmt: skip
    assert item.Modality == "CT"
    assert item.ScheduledProcedureStepDescription is None  # held empty
    assert "StudyInstanceUID" not in ds  # not asked


def test_a_step_sequence_without_an_item_gets_every_step_attribute() -> None:
    ds = answer(identifier(), procedure())
    item = ds.ScheduledProcedureStepSequence[0]
    assert item.ScheduledProcedureStepID == "ACC1"
    assert item.ScheduledProcedureStepStatus == "SCHEDULED"
    assert item.ScheduledStationAETitle == "CT1"


def test_names_beyond_ascii_are_answered_in_utf8() -> None:
    ds = answer(identifier(), procedure("Müller^Jürgen"))
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "Müller^Jürgen"


def test_answers_ask_the_store_with_the_identifiers_keys() -> None:
    asked: list[Mapping[str, str]] = []

    def find(keys: Mapping[str, str]) -> list[ScheduledProcedure]:
        asked.append(keys)
        return [procedure(), procedure("ROE^RICK")]

    found = list(answers(identifier(step(Modality="CT"), PatientID="P*"), find))
    assert asked == [{"PatientID": "P*", "Modality": "CT"}]
    assert [str(ds.PatientName) for ds in found] == ["DOE^JOHN", "ROE^RICK"]
