"""One new instance added to the archive index in a few statements: the usual case of
the C-STORE inbox (a SOP instance no file of the archive holds yet, in a new file, of
a new study or of one whose patient it names).

The counts of its series, study and patient are raised by one instead of being
recounted; they stay equal to what :func:`pacsync.db.archive_counts.recount` finds,
as every instance added here is live (not quarantined) and its series belongs to its
study.  The modalities of the study gain the series' modality, and the patient takes
the demographics of the study, now its most recently updated one.

Anything else is left to the batch path (:func:`add` answers None before writing
anything): a path or SOP instance already indexed (a replaced or duplicate copy), an
instance whose patient differs from its study's (quarantine, or a study taking a new
patient), a series already filed under another study."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from pacsync.db.archive_identity import conflict_row, not_yet_recorded, other_study_of
from pacsync.db.archive_rows import instance_row, new_patient, new_series, new_study, stored
from pacsync.db.archive_tables import (
    archive_files,
    identity_conflicts,
    image_instances,
    image_patients,
    image_series,
    image_studies,
)
from pacsync.domain.clock import utc_now
from pacsync.domain.imaging import Demographics, PatientKey, fold, identity_conflict
from pacsync.imaging.ports import Parsed

_f = archive_files.c
_i = image_instances.c
_se = image_series.c
_st = image_studies.c
_p = image_patients.c


def add(conn: Connection, archive: str, parsed: Parsed) -> int | None:
    """Index ``parsed`` (a file read with a header) as a new instance; the identity
    conflicts recorded, or None when it is not this simple case (nothing written)."""
    header = parsed.header
    assert header is not None
    study_uid = header.study_instance_uid or ""
    series_uid = header.series_instance_uid or ""
    known = conn.execute(
        select(
            select(_f.id).where(_f.archive == archive, _f.path == parsed.stat.path)
            .scalar_subquery(),
            select(_i.file_id).where(_i.archive == archive,
                                     _i.sop_instance_uid == header.sop_instance_uid)
            .scalar_subquery(),
            select(_se.study_uid).where(_se.archive == archive, _se.series_uid == series_uid)
            .scalar_subquery(),
        )
    ).one()  # fmt: skip
    file_known, sop_known, series_study = known
    if file_known is not None or sop_known is not None:
        return None
    if series_study is not None and series_study != study_uid:
        return None
    key = PatientKey.of(archive, header)
    found = Demographics.of(header)
    study = conn.execute(
        select(image_studies).where(_st.archive == archive, _st.study_uid == study_uid)
    ).first()
    if study is not None:
        if (study.issuer, study.patient_id) != (key.issuer, key.patient_id):
            return None
        if identity_conflict(
            Demographics(study.patient_name or "", study.patient_birth_date or ""), found
        ):
            return None
        patient_known = True  # a study's patient is indexed as long as the study is
    else:
        patient_known = conn.execute(
            select(_p.patient_id).where(
                _p.archive == archive, _p.issuer == key.issuer, _p.patient_id == key.patient_id
            )
        ).first() is not None  # fmt: skip
    conflicts: list[dict[str, Any]] = []
    if patient_known and key.patient_id:
        other = other_study_of(conn, archive, key=key, study_uid=study_uid, found=found,
                               checked={})  # fmt: skip
        if other is not None:
            flagged, reason = other
            conflicts.append(conflict_row(archive, key, known=flagged, found=found,
                                          header=header, parsed=parsed, reason=reason,
                                          scope="patient"))  # fmt: skip
    now = utc_now()
    file_id = conn.execute(
        insert(archive_files)
        .values(
            archive=archive, path=parsed.stat.path, size=parsed.stat.size,
            mtime_ns=parsed.stat.mtime_ns, inode=parsed.stat.inode,
            content_hash=parsed.content_hash, state=parsed.state, reason=parsed.reason,
            sop_instance_uid=header.sop_instance_uid, indexed_at=now,
        )
        .returning(_f.id)
    ).scalar_one()  # fmt: skip
    conn.execute(insert(image_instances).values(**instance_row(archive, file_id, header, False)))
    new_in_study = series_study is None
    if new_in_study:
        conn.execute(insert(image_series).values(**new_series(archive, header), instance_count=1))
    else:
        conn.execute(
            update(image_series)
            .where(_se.archive == archive, _se.series_uid == series_uid)
            .values(instance_count=_se.instance_count + 1)
        )
    if study is None:
        values = new_study(archive, header, key, now)
        conn.execute(insert(image_studies).values(
            **stored(values), series_count=1, instance_count=1,
            modalities=header.modality or "",
        ))  # fmt: skip
        demographics = {k: values[k] for k in ("patient_name", "patient_birth_date",
                                               "patient_sex")}  # fmt: skip
    else:
        changes: dict[str, Any] = {"instance_count": _st.instance_count + 1, "updated_at": now}
        if new_in_study:
            changes["series_count"] = _st.series_count + 1
            changes["modalities"] = _with_modality(study.modalities, header.modality)
        conn.execute(
            update(image_studies)
            .where(_st.archive == archive, _st.study_uid == study_uid)
            .values(**changes)
        )
        demographics = {"patient_name": study.patient_name,
                        "patient_birth_date": study.patient_birth_date,
                        "patient_sex": study.patient_sex}  # fmt: skip
    if not patient_known:
        conn.execute(insert(image_patients).values(**new_patient(key, header), study_count=1))
    else:
        conn.execute(
            update(image_patients)
            .where(_p.archive == archive, _p.issuer == key.issuer,
                   _p.patient_id == key.patient_id)
            .values(study_count=_p.study_count + (1 if study is None else 0),
                    name_folded=fold(demographics["patient_name"]), **demographics)
        )  # fmt: skip
    fresh = not_yet_recorded(conn, archive, conflicts)
    if fresh:
        conn.execute(insert(identity_conflicts), fresh)
    return len(fresh)


def _with_modality(modalities: str | None, modality: str | None) -> str:
    """A study's ``\\``-joined modalities with one more (sorted, each once)."""
    found = {m for m in (modalities or "").split("\\") if m}
    if modality:
        found.add(modality)
    return "\\".join(sorted(found))
