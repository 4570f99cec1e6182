"""The legacy mapping: its default layout, YAML overrides, typos that say what is valid."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from pacsync.domain.imaging import InstanceHeader
from pacsync.domain.legacy_mapping import (
    ImagesTable,
    LegacyMapping,
    specific_character_set,
)


def test_the_default_layout() -> None:
    assert LegacyMapping().columns_by_table() == {
        "IMAGES": ["SERIES_UID", "SOP_UID", "SOP_CLASS", "INSTANCE_NO", "ROWS", "COLS", "FRAMES",
                   "FILE_PATH"],
        "SERIES": ["SERIES_UID", "STUDY_UID", "MODALITY", "SERIES_NO", "BODY_PART",
                   "DESCRIPTION"],
        "STUDIES": ["STUDY_UID", "PAT_KEY", "STUDY_DATE", "STUDY_TIME", "ACCESSION",
                    "DESCRIPTION", "REFERRING", "STUDY_NO"],
        "PATIENTS": ["PAT_KEY", "PAT_ID", "PAT_NAME", "BIRTH_DATE", "SEX", "ISSUER"],
    }  # fmt: skip


def test_every_attribute_is_an_instance_header_field() -> None:
    header_fields = set(InstanceHeader.__dataclass_fields__)
    mapping = LegacyMapping()
    attributes = [a for level in mapping.levels() for a in level.attributes()]
    assert len(attributes) == len(set(attributes))
    assert set(attributes) <= header_fields
    assert "file_path" not in attributes


def test_joins_go_from_the_images_up() -> None:
    mapping = LegacyMapping()
    assert [(child.table, child.parent, parent.table, parent.key) for child, parent in
            mapping.joins()] == [
        ("IMAGES", ("SERIES_UID",), "SERIES", ("SERIES_UID",)),
        ("SERIES", ("STUDY_UID",), "STUDIES", ("STUDY_UID",)),
        ("STUDIES", ("PAT_KEY",), "PATIENTS", ("PAT_KEY",)),
    ]  # fmt: skip


def test_a_yaml_mapping_overrides_only_what_it_names() -> None:
    text = """
    patients:
      table: PATIENT
      key: [PATIENT_ID, ISSUER]
      patient_id: PATIENT_ID
      patient_sex: null
    studies:
      parent: [PATIENT_ID, ISSUER]
      study_date: EXAM_DATE
    images:
      path_prefix: 'Y:\\PACS'
    """
    mapping = LegacyMapping.model_validate(yaml.safe_load(text))
    assert mapping.patients.table == "PATIENT"
    assert mapping.patients.key == ("PATIENT_ID", "ISSUER")
    assert "patient_sex" not in mapping.patients.attributes()
    assert mapping.patients.attributes()["patient_name"] == "PAT_NAME"
    assert mapping.studies.attributes()["study_date"] == "EXAM_DATE"
    assert mapping.series == LegacyMapping().series
    assert mapping.images.path_prefix == "Y:\\PACS"


def test_a_single_column_may_be_written_without_a_list() -> None:
    mapping = LegacyMapping.model_validate(
        {"patients": {"key": "PAT_ID"}, "studies": {"parent": "PAT_ID"}}
    )
    assert (mapping.patients.key, mapping.studies.parent) == (("PAT_ID",), ("PAT_ID",))


def test_a_misspelt_key_lists_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        LegacyMapping.model_validate({"studies": {"study_dat": "STUDY_DATE"}})
    message = str(caught.value)
    assert "unknown key(s) study_dat in studies" in message
    assert "valid keys: table, key, parent, study_instance_uid, study_date" in message


def test_a_misspelt_level_lists_the_levels() -> None:
    with pytest.raises(ValidationError, match=r"unknown key\(s\) studys; valid keys: patients, "
                       r"studies, series, images"):  # fmt: skip
        LegacyMapping.model_validate({"studys": {}})


def test_joins_need_as_many_columns_on_both_sides() -> None:
    with pytest.raises(ValidationError, match=r"studies.parent has 2 column\(s\) but "
                       r"patients.key has 1"):  # fmt: skip
        LegacyMapping.model_validate({"studies": {"parent": ["PAT_ID", "ISSUER"]}})


@pytest.mark.parametrize(
    "data",
    [
        {"images": {"file_path": None}},
        {"images": {"sop_instance_uid": None}},
        {"series": {"table": " "}},
        {"patients": {"key": ["PAT_KEY", ""]}},
    ],
)
def test_required_columns_and_names(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LegacyMapping.model_validate(data)


def test_the_mapping_is_frozen() -> None:
    mapping = LegacyMapping()
    with pytest.raises(ValidationError):
        mapping.images.table = "OTHER"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("prefix", "stored", "relative"),
    [
        (None, "2019/0312/IMG0001.j2k", "2019/0312/IMG0001.j2k"),
        (None, "2019\\0312\\IMG0001.j2k", "2019/0312/IMG0001.j2k"),
        (None, "/2019/IMG0001.j2k ", "2019/IMG0001.j2k"),
        ("Y:\\PACS", "Y:\\PACS\\2019\\IMG0001.jp2", "2019/IMG0001.jp2"),
        ("y:/pacs/", "Y:\\PACS\\2019\\IMG0001.jp2", "2019/IMG0001.jp2"),
        ("Y:\\PACS", "Y:\\PACSOLD\\IMG0001.jp2", "Y:/PACSOLD/IMG0001.jp2"),
    ],
)
def test_stored_paths_become_relative(prefix: str | None, stored: str, relative: str) -> None:
    assert ImagesTable(path_prefix=prefix).relative_path(stored) == relative


@pytest.mark.parametrize(
    ("charset", "term"),
    [
        ("UTF8", "ISO_IR 192"),
        ("utf8", "ISO_IR 192"),
        ("ISO8859_1", "ISO_IR 100"),
        ("WIN1252", "ISO_IR 100"),
        ("ISO8859_2", "ISO_IR 101"),
        ("ASCII", None),
        ("WIN1251", "ISO_IR 192"),
    ],
)
def test_connection_character_sets_as_dicom_terms(charset: str, term: str | None) -> None:
    assert specific_character_set(charset) == term
