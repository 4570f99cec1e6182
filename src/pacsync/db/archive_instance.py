"""One new instance added to the archive index in a few statements: the usual case of
the C-STORE inbox (a SOP instance no file of the archive holds yet, in a new file, of
a new study or of one whose patient it names).

The counts of its series, study and patient are raised by one instead of being
recounted; they stay equal to what :func:`pacsync.db.archive_counts.recount` finds,
as every instance added here is live (not quarantined) and its series belongs to its
study.  The modalities of the study gain the series' modality, and the patient takes
the demographics of the study, now its most recently updated one (its row is not
written when it shows them already: a study's next instances touch the file,
instance, series and study rows only).

Anything else is left to the batch path (:func:`add` answers None before writing
anything): a path or SOP instance already indexed (a replaced or duplicate copy), an
instance whose patient differs from its study's (quarantine, or a study taking a new
patient), a series already filed under another study."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, insert, select, update

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


# built once: a statement used again keeps its compiled form and cache key, which
# costs more to make than the statement takes to run
_KNOWN = select(
    select(_f.id).where(_f.archive == bindparam("archive"), _f.path == bindparam("path"))
    .scalar_subquery(),
    select(_i.file_id).where(_i.archive == bindparam("archive"),
                             _i.sop_instance_uid == bindparam("sop"))
    .scalar_subquery(),
    select(_se.study_uid).where(_se.archive == bindparam("archive"),
                                _se.series_uid == bindparam("series"))
    .scalar_subquery(),
)  # fmt: skip
# the study, and what its patient shows now (the patient row is left alone when the
# study's demographics are already the ones it shows)
_STUDY = (
    select(image_studies, _p.patient_name.label("shown_name"),
           _p.patient_birth_date.label("shown_birth_date"), _p.patient_sex.label("shown_sex"))
    .select_from(image_studies.outerjoin(image_patients, and_(
        _p.archive == _st.archive, _p.issuer == _st.issuer, _p.patient_id == _st.patient_id)))
    .where(_st.archive == bindparam("archive"), _st.study_uid == bindparam("study"))
)  # fmt: skip
_PATIENT = select(_p.patient_id).where(
    _p.archive == bindparam("archive"), _p.issuer == bindparam("issuer"),
    _p.patient_id == bindparam("patient_id"),
)  # fmt: skip
_ADD_FILE = insert(archive_files).returning(_f.id)
_ADD_INSTANCE = insert(image_instances)
_ADD_SERIES = insert(image_series)
_ADD_STUDY = insert(image_studies)
_ADD_PATIENT = insert(image_patients)
# (an UPDATE's parameters are named apart from its table's columns)
_ONE_MORE_IN_SERIES = (
    update(image_series)
    .where(_se.archive == bindparam("in_archive"), _se.series_uid == bindparam("in_series"))
    .values(instance_count=_se.instance_count + 1)
)
_ONE_MORE_IN_STUDY = (
    update(image_studies)
    .where(_st.archive == bindparam("in_archive"), _st.study_uid == bindparam("in_study"))
    .values(instance_count=_st.instance_count + 1, updated_at=bindparam("now"))
)
_ONE_MORE_SERIES_IN_STUDY = _ONE_MORE_IN_STUDY.values(
    series_count=_st.series_count + 1, modalities=bindparam("with_modality")
)
_PATIENT_OF_STUDY = (
    update(image_patients)
    .where(_p.archive == bindparam("in_archive"), _p.issuer == bindparam("in_issuer"),
           _p.patient_id == bindparam("in_patient_id"))
    .values(study_count=_p.study_count + bindparam("more_studies"),
            patient_name=bindparam("name"), name_folded=bindparam("folded"),
            patient_birth_date=bindparam("birth_date"), patient_sex=bindparam("sex"))
)  # fmt: skip


def add(conn: Connection, archive: str, parsed: Parsed) -> int | None:
    """Index ``parsed`` (a file read with a header) as a new instance; the identity
    conflicts recorded, or None when it is not this simple case (nothing written)."""
    header = parsed.header
    assert header is not None
    study_uid = header.study_instance_uid or ""
    series_uid = header.series_instance_uid or ""
    file_known, sop_known, series_study = conn.execute(_KNOWN, {
        "archive": archive, "path": parsed.stat.path, "sop": header.sop_instance_uid,
        "series": series_uid,
    }).one()  # fmt: skip
    if file_known is not None or sop_known is not None:
        return None
    if series_study is not None and series_study != study_uid:
        return None
    key = PatientKey.of(archive, header)
    found = Demographics.of(header)
    study = conn.execute(_STUDY, {"archive": archive, "study": study_uid}).first()
    if study is not None:
        if (study.issuer, study.patient_id) != (key.issuer, key.patient_id):
            return None
        if identity_conflict(
            Demographics(study.patient_name or "", study.patient_birth_date or ""), found
        ):
            return None
        patient_known = True  # a study's patient is indexed as long as the study is
    else:
        patient_known = conn.execute(_PATIENT, {
            "archive": archive, "issuer": key.issuer, "patient_id": key.patient_id,
        }).first() is not None  # fmt: skip
    conflicts: list[dict[str, Any]] = []
    if patient_known and key.patient_id:
        other = other_study_of(conn, archive, key=key, study_uid=study_uid, found=found,
                               checked={})  # fmt: skip
        if other is not None:
            flagged, reason = other
            conflicts.append(conflict_row(archive, key, known=flagged, found=found,
                                          header=header, parsed=parsed, reason=reason,
                                          scope="patient"))  # fmt: skip
    _write(conn, archive, parsed, key, study, series_is_new=series_study is None,
           patient_known=patient_known)  # fmt: skip
    fresh = not_yet_recorded(conn, archive, conflicts)
    if fresh:
        conn.execute(insert(identity_conflicts), fresh)
    return len(fresh)


def _write(
    conn: Connection,
    archive: str,
    parsed: Parsed,
    key: PatientKey,
    study: Row[Any] | None,
    *,
    series_is_new: bool,
    patient_known: bool,
) -> None:
    """The file and instance rows, and one more in its series, study and patient (new
    ones where there were none)."""
    header = parsed.header
    assert header is not None
    now = utc_now()
    file_id = conn.execute(_ADD_FILE, {
        "archive": archive, "path": parsed.stat.path, "size": parsed.stat.size,
        "mtime_ns": parsed.stat.mtime_ns, "inode": parsed.stat.inode,
        "content_hash": parsed.content_hash, "state": parsed.state, "reason": parsed.reason,
        "sop_instance_uid": header.sop_instance_uid, "indexed_at": now,
    }).scalar_one()  # fmt: skip
    conn.execute(_ADD_INSTANCE, instance_row(archive, file_id, header, False))
    if series_is_new:
        conn.execute(_ADD_SERIES, {**new_series(archive, header), "instance_count": 1})
    else:
        series = {"in_archive": archive, "in_series": header.series_instance_uid or ""}
        conn.execute(_ONE_MORE_IN_SERIES, series)
    if study is None:
        values = new_study(archive, header, key, now)
        conn.execute(_ADD_STUDY, {**stored(values), "series_count": 1, "instance_count": 1,
                                  "modalities": header.modality or ""})  # fmt: skip
        shown = (values["patient_name"], values["patient_birth_date"], values["patient_sex"])
    else:
        where = {"in_archive": archive, "in_study": study.study_uid, "now": now}
        if series_is_new:
            modalities = _with_modality(study.modalities, header.modality)
            conn.execute(_ONE_MORE_SERIES_IN_STUDY, {**where, "with_modality": modalities})
        else:
            conn.execute(_ONE_MORE_IN_STUDY, where)
        shown = (study.patient_name, study.patient_birth_date, study.patient_sex)
        if shown == (study.shown_name, study.shown_birth_date, study.shown_sex):
            return  # the patient already shows this study's demographics; counts unchanged
    if not patient_known:
        conn.execute(_ADD_PATIENT, {**new_patient(key, header), "study_count": 1})
        return
    name, birth_date, sex = shown
    conn.execute(_PATIENT_OF_STUDY, {
        "in_archive": archive, "in_issuer": key.issuer, "in_patient_id": key.patient_id,
        "more_studies": 1 if study is None else 0, "name": name, "folded": fold(name),
        "birth_date": birth_date, "sex": sex,
    })  # fmt: skip


def _with_modality(modalities: str | None, modality: str | None) -> str:
    """A study's ``\\``-joined modalities with one more (sorted, each once)."""
    found = {m for m in (modalities or "").split("\\") if m}
    if modality:
        found.add(modality)
    return "\\".join(sorted(found))
