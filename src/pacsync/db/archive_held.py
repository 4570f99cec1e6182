"""What the index holds already of the studies, patients and series an indexing batch
touches, read in chunks (:mod:`pacsync.db.archive_index` adds to it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from pacsync.db.archive_batches import chunks
from pacsync.db.archive_tables import image_instances, image_patients, image_series, image_studies
from pacsync.domain.imaging import PatientKey

_i = image_instances.c
_se = image_series.c
_st = image_studies.c
_p = image_patients.c


def held_studies(conn: Connection, archive: str, uids: set[str]) -> dict[str, dict[str, Any]]:
    """The archive's study rows of ``uids``, each with its instances left in the index."""
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(sorted(uids)):
        query = select(image_studies).where(_st.archive == archive, _st.study_uid.in_(chunk))
        for row in conn.execute(query):
            found[row.study_uid] = dict(row._mapping)
    for chunk in chunks(sorted(found)):
        query = (
            select(_i.study_uid, func.count())
            .where(_i.archive == archive, _i.study_uid.in_(chunk), _i.quarantined.is_(False))
            .group_by(_i.study_uid)
        )
        left: dict[str, int] = dict(conn.execute(query).all())
        for uid in chunk:
            found[uid]["instances_left"] = left.get(uid, 0)
    return found


def held_patients(
    conn: Connection, archive: str, keys: set[PatientKey]
) -> dict[PatientKey, dict[str, Any]]:
    """The archive's patients of ``keys`` (looked up by patient id, any issuer)."""
    found: dict[PatientKey, dict[str, Any]] = {}
    for chunk in chunks(sorted({k.patient_id for k in keys})):
        query = select(_p.issuer, _p.patient_id, _p.patient_name, _p.patient_birth_date).where(
            _p.archive == archive, _p.patient_id.in_(chunk)
        )
        for row in conn.execute(query):
            found[PatientKey(archive, row.issuer, row.patient_id)] = dict(row._mapping)
    return found


def held_series(conn: Connection, archive: str, uids: set[str]) -> dict[str, str]:
    """The study of each of the archive's series in ``uids``."""
    found: dict[str, str] = {}
    for chunk in chunks(sorted(uids)):
        query = select(_se.series_uid, _se.study_uid).where(
            _se.archive == archive, _se.series_uid.in_(chunk)
        )
        found.update(conn.execute(query).all())
    return found
