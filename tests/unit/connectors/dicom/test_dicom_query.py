from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from pacsync.connectors.dicom.query import (
    Level,
    QueryCache,
    answer,
    date_range,
    identifier,
    level_of,
    value_list,
)
from pacsync.errors import InvalidRequest


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2024-01-01", "2024-01-31", "20240101-20240131"),
        ("20240101", None, "20240101-"),
        (None, "2024-01-31", "-20240131"),
        ("2024-01-05", "20240105", "20240105"),
        (None, None, ""),
    ],
)
def test_date_ranges(start: str | None, end: str | None, expected: str) -> None:
    assert date_range(start, end) == expected


def test_a_bad_date_is_refused_with_the_format() -> None:
    with pytest.raises(InvalidRequest, match="invalid date '2024/1/5'"):
        date_range("2024/1/5", None)


def test_modality_lists_are_backslash_separated_upper_case() -> None:
    assert value_list(["ct", " MR ", ""]) == "CT\\MR"


def test_identifier_has_the_level_return_keys_and_the_matching_values() -> None:
    ds = identifier(
        Level.STUDY,
        {"PatientName": "DOE^*", "StudyDate": "20240101-", "ModalitiesInStudy": "CT\\MR"},
    )
    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.PatientName == "DOE^*"
    assert ds.StudyDate == "20240101-"
    assert list(ds.ModalitiesInStudy) == ["CT", "MR"]
    assert ds.StudyInstanceUID == ""
    assert "SpecificCharacterSet" not in ds


def test_non_ascii_values_declare_utf8() -> None:
    ds = identifier(Level.PATIENT, {"PatientName": "MÜLLER^*"})
    assert ds.SpecificCharacterSet == "ISO_IR 192"


def test_series_and_image_queries_need_the_uids_above() -> None:
    with pytest.raises(InvalidRequest, match="a series query needs StudyInstanceUID"):
        identifier(Level.SERIES, {"Modality": "CT"})
    with pytest.raises(InvalidRequest, match=r"an? image query needs SeriesInstanceUID"):
        identifier(Level.IMAGE, {"StudyInstanceUID": "1.2"})


def test_unknown_keywords_and_levels_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="unknown DICOM keyword 'PatientNom'"):
        identifier(Level.PATIENT, {"PatientNom": "X"})
    with pytest.raises(InvalidRequest, match="unknown query level 'instance'"):
        level_of("instance")
    assert level_of("study") is Level.STUDY


def test_answers_are_keyword_value_dicts() -> None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = "DOE^JOHN"
    ds.ModalitiesInStudy = ["CT", "SR"]
    ds.StudyDescription = None
    assert answer(ds) == {
        "PatientName": "DOE^JOHN",
        "ModalitiesInStudy": "CT\\SR",
        "StudyDescription": "",
    }


def test_the_cache_keeps_answers_for_their_ttl() -> None:
    cache = QueryCache()
    key = QueryCache.key("pacs", Level.STUDY, {"PatientID": "1"}, 0)
    cache.put(key, [{"PatientID": "1"}], ttl_s=60)
    kept = cache.get(key)
    assert kept == [{"PatientID": "1"}]
    kept[0]["PatientID"] = "changed"
    assert cache.get(key) == [{"PatientID": "1"}]
    cache.put(key, [], ttl_s=0)
    assert cache.get(key) == [{"PatientID": "1"}]
    cache.put(key, [], ttl_s=-1)
    expired = QueryCache()
    expired._kept[key] = (0.0, [])
    assert expired.get(key) is None
