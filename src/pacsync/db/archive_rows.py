"""Index rows built from an instance header."""

from __future__ import annotations

from typing import Any

from pacsync.db.archive_tables import image_studies
from pacsync.domain.imaging import (
    InstanceHeader,
    PatientKey,
    dicom_date,
    dicom_time,
    fold,
)


def stored(study: dict[str, Any]) -> dict[str, Any]:
    """A study's columns (without what a batch keeps beside them)."""
    return {k: v for k, v in study.items() if k in image_studies.c}


def study_values(study: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stored(study).items() if k not in ("archive", "study_uid")}


def new_study(archive: str, h: InstanceHeader, key: PatientKey, now: Any) -> dict[str, Any]:
    return {
        "archive": archive,
        "study_uid": h.study_instance_uid or "",
        "issuer": key.issuer,
        "patient_id": key.patient_id,
        "patient_name": h.patient_name,
        "name_folded": fold(h.patient_name),
        "patient_birth_date": dicom_date(h.patient_birth_date),
        "patient_sex": h.patient_sex,
        "study_date": dicom_date(h.study_date),
        "study_time": dicom_time(h.study_time),
        "accession_number": h.accession_number,
        "study_description": h.study_description,
        "referring_physician_name": h.referring_physician_name,
        "study_id": h.study_id,
        "character_set": h.specific_character_set,
        "updated_at": now,
        "instances_left": 0,
    }


def new_patient(key: PatientKey, h: InstanceHeader) -> dict[str, Any]:
    return {
        "archive": key.archive,
        "issuer": key.issuer,
        "patient_id": key.patient_id,
        "patient_name": h.patient_name,
        "name_folded": fold(h.patient_name),
        "patient_birth_date": dicom_date(h.patient_birth_date),
        "patient_sex": h.patient_sex,
    }


def new_series(archive: str, h: InstanceHeader) -> dict[str, Any]:
    return {
        "archive": archive,
        "series_uid": h.series_instance_uid or "",
        "study_uid": h.study_instance_uid or "",
        "modality": h.modality,
        "series_number": h.series_number,
        "series_description": h.series_description,
        "body_part_examined": h.body_part_examined,
        "series_date": h.series_date,
        "series_time": h.series_time,
    }


def instance_row(
    archive: str, file_id: int, h: InstanceHeader, quarantined: bool
) -> dict[str, Any]:
    return {
        "archive": archive,
        "sop_instance_uid": h.sop_instance_uid,
        "file_id": file_id,
        "study_uid": h.study_instance_uid or "",
        "series_uid": h.series_instance_uid or "",
        "sop_class_uid": h.sop_class_uid,
        "transfer_syntax_uid": h.transfer_syntax_uid,
        "instance_number": h.instance_number,
        "number_of_frames": h.number_of_frames,
        "rows": h.rows,
        "columns": h.columns,
        "quarantined": quarantined,
    }
