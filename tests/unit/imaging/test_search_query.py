"""Search queries: keys by keyword or tag, bad keys and pages refused with the valid
choices, and results in the DICOM JSON model with where each lives."""

from __future__ import annotations

import pytest

from pacsync.errors import InvalidRequest
from pacsync.imaging import dicom_json
from pacsync.imaging.search import Query


def test_keys_by_keyword_or_tag_and_universal_matching_dropped() -> None:
    query = Query.build("series", {"00100010": "DOE*", "Modality": "CT", "StudyDate": "*"})
    assert query.match == {"PatientName": "DOE*", "Modality": "CT"}


def test_an_unknown_key_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidRequest) as refused:
        Query.build("study", {"Modality": "CT"})  # a series-level key at the study level
    assert "ModalitiesInStudy" in refused.value.hint


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (1001, 0), (10, -1), (10, 10**12)])
def test_pages_out_of_range_are_refused(limit: int, offset: int) -> None:
    with pytest.raises(InvalidRequest):
        Query.build("study", {}, limit=limit, offset=offset)


def test_a_study_result_in_dicom_json() -> None:
    row = {
        "archive": "ct",
        "PatientName": "DOE^JOHN",
        "StudyInstanceUID": "1.2.3",
        "ModalitiesInStudy": "CT\\SR",
        "NumberOfStudyRelatedInstances": 4,
        "StudyDate": None,
    }
    out = dicom_json.result(row, "study", "http://pacs/api/v1/dicomweb")
    assert out["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "DOE^JOHN"}]}
    assert out["00080061"] == {"vr": "CS", "Value": ["CT", "SR"]}
    assert out["00201208"] == {"vr": "IS", "Value": [4]}
    assert out["00080020"] == {"vr": "DA"}
    assert out["00080052"]["Value"] == ["STUDY"]
    assert out["00081190"]["Value"] == ["http://pacs/api/v1/dicomweb/studies/1.2.3"]
    assert (out["00090010"]["Value"], out["00091001"]["Value"]) == (["PACSYNC"], ["ct"])
