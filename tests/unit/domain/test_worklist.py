"""Scheduled procedure steps: what is accepted when scheduling, and how worklist
queries match them (PS3.4 C.2.2.2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pacsync.domain.worklist import (
    NewProcedure,
    ProcedureStatus,
    ScheduledProcedure,
    matches,
    value_matches,
)
from pacsync.errors import InvalidRequest

GIVEN: dict[str, Any] = {
    "accession_number": "ACC1",
    "patient_id": "P100",
    "patient_name": "Müller^Jürgen",
    "modality": "ct",
    "station_ae": "CT1",
    "start": "2026-11-24T09:30",
    "study_uid": "2.25.7001",
}


def scheduled(**changes: Any) -> ScheduledProcedure:
    return ScheduledProcedure(
        id=1,
        procedure=NewProcedure.of({**GIVEN, **changes}).with_defaults(),
        status=ProcedureStatus.SCHEDULED,
        source="test",
        created_at=dt.datetime(2026, 11, 23),
    )


def test_a_procedure_is_normalised_and_gets_default_ids() -> None:
    p = scheduled().procedure
    assert p.modality == "CT"
    assert p.start == dt.datetime(2026, 11, 24, 9, 30)
    assert (p.requested_procedure_id, p.step_id) == ("ACC1", "ACC1")


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("202611240930", dt.datetime(2026, 11, 24, 9, 30)),
        ("20261124093015", dt.datetime(2026, 11, 24, 9, 30, 15)),
        ("20261124", dt.datetime(2026, 11, 24)),
        ("2026-11-24T09:30:00+01:00", dt.datetime(2026, 11, 24, 9, 30)),
    ],
)
def test_start_is_read_as_a_dicom_or_iso_date_time(start: str, expected: dt.datetime) -> None:
    assert NewProcedure.of({**GIVEN, "start": start}).start == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("accession_number", "A" * 17),
        ("accession_number", ""),
        ("patient_id", "P" * 65),
        ("modality", "C-T"),
        ("station_ae", "A\\B"),
        ("station_ae", "SEVENTEEN_CHARS_X"),
        ("study_uid", "1.2.abc"),
        ("study_uid", "1.02.3"),
        ("patient_sex", "X"),
        ("patient_birth_date", "1970-1-1"),
        ("start", "tomorrow"),
        ("start", 1764000000),
    ],
)
def test_bad_input_is_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        NewProcedure.of({**GIVEN, field: value})
    assert refused.value.code == "PACS-105"
    assert f"{field}:" in refused.value.message
    assert "start (YYYY-MM-DDTHH:MM)" in refused.value.hint


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="colour"):
        NewProcedure.of({**GIVEN, "colour": "blue"})


def test_attributes_are_dicom_strings() -> None:
    held = scheduled().attributes()
    assert held["ScheduledProcedureStepStartDate"] == "20261124"
    assert held["ScheduledProcedureStepStartTime"] == "093000"
    assert held["ScheduledProcedureStepStatus"] == "SCHEDULED"
    assert held["Modality"] == "CT"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, True),
        ({"ScheduledStationAETitle": "CT1"}, True),
        ({"ScheduledStationAETitle": "CT2"}, False),
        ({"ScheduledStationAETitle": "ct1"}, False),  # AE titles are case-sensitive
        ({"ScheduledStationAETitle": "CT*"}, True),
        ({"Modality": "CT"}, True),
        ({"Modality": "MR"}, False),
        ({"PatientID": "P1?0"}, True),
        ({"PatientID": "P1?"}, False),
        ({"PatientID": "*"}, True),
        ({"PatientName": "muller^*"}, True),  # names: case and accents ignored
        ({"PatientName": "MÜLLER^JÜRGEN"}, True),
        ({"PatientName": "Mul*^J?rgen"}, True),
        ({"PatientName": "Meier*"}, False),
        ({"AccessionNumber": "ACC1"}, True),
        ({"AccessionNumber": "ACC"}, False),
        ({"StudyInstanceUID": "2.25.1\\2.25.7001"}, True),
        ({"StudyInstanceUID": "2.25.1"}, False),
        ({"ScheduledProcedureStepStartDate": "20261124"}, True),
        ({"ScheduledProcedureStepStartDate": "20261120-20261124"}, True),
        ({"ScheduledProcedureStepStartDate": "20261125-"}, False),
        ({"ScheduledProcedureStepStartDate": "-20261124"}, True),
        ({"ScheduledProcedureStepStartDate": "2026-11-24"}, True),
        ({"ScheduledProcedureStepStartTime": "0800-1000"}, True),
        ({"ScheduledProcedureStepStartTime": "1000-"}, False),
        ({"ScheduledProcedureStepStartTime": "-0930"}, True),  # 0930 reaches 093059
        ({"ScheduledProcedureStepStartTime": "09"}, True),
        ({"ScheduledProcedureStepStartTime": "10"}, False),
        ({"ScheduledStationAETitle": "CT1", "Modality": "MR"}, False),
        ({"ScheduledPerformingPhysicianName": "SMITH"}, False),  # held empty
        ({"PatientWeight": "70"}, True),  # not held: matches everything
    ],
)
def test_worklist_matching(keys: dict[str, str], expected: bool) -> None:
    assert matches(scheduled(), keys) is expected


def test_wild_cards_are_the_only_special_characters() -> None:
    assert value_matches("AccessionNumber", "A.C+1", "A.C+1")
    assert not value_matches("AccessionNumber", "ABC+1", "A.C+1")
    assert value_matches("AccessionNumber", "A(1)", "A(*")


@pytest.mark.parametrize(
    ("keyword", "wanted"),
    [
        ("ScheduledProcedureStepStartDate", "2026-13-45x"),
        ("ScheduledProcedureStepStartDate", "20261130-20261101"),
        ("ScheduledProcedureStepStartTime", "9am"),
        ("ScheduledProcedureStepStartTime", "-"),
    ],
)
def test_a_malformed_range_is_an_invalid_request(keyword: str, wanted: str) -> None:
    with pytest.raises(InvalidRequest):
        matches(scheduled(), {keyword: wanted})
