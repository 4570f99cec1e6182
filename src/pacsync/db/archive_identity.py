"""The identity rule applied in an index batch: another study of the same patient key
with other demographics, and conflicts recorded once per pair of identities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from pacsync.db.archive_batches import chunks
from pacsync.db.archive_tables import (
    identity_conflicts,
    image_studies,
)
from pacsync.domain.clock import utc_now
from pacsync.domain.imaging import (
    Demographics,
    InstanceHeader,
    PatientKey,
    fold,
    identity_conflict,
)
from pacsync.imaging.ports import Parsed

_st = image_studies.c
_OTHER_STUDIES = select(_st.study_uid, _st.patient_name, _st.patient_birth_date).where(
    _st.archive == bindparam("archive"),
    _st.issuer == bindparam("issuer"),
    _st.patient_id == bindparam("patient_id"),
    _st.study_uid != bindparam("study_uid"),
)  # built once: its compiled form is kept


def other_study_of(
    conn: Connection,
    archive: str,
    *,
    key: PatientKey,
    study_uid: str,
    found: Demographics,
    checked: dict[tuple[PatientKey, str], tuple[dict[str, Any], str] | None],
) -> tuple[dict[str, Any], str] | None:
    """Another study of the same patient key whose demographics differ from ``found``
    (and why), or None.  Checked once per (patient, study) in a batch."""
    if (key, study_uid) in checked:
        return checked[(key, study_uid)]
    answer = None
    given = {"archive": archive, "issuer": key.issuer, "patient_id": key.patient_id,
             "study_uid": study_uid}  # fmt: skip
    for row in conn.execute(_OTHER_STUDIES, given):
        known = Demographics(row.patient_name or "", row.patient_birth_date or "")
        if reason := identity_conflict(known, found):
            answer = ({"patient_name": row.patient_name,
                       "patient_birth_date": row.patient_birth_date}, reason)  # fmt: skip
            break
    checked[(key, study_uid)] = answer
    return answer


def study_conflict(study: dict[str, Any], key: PatientKey, found: Demographics) -> str:
    if (study["issuer"], study["patient_id"]) != (key.issuer, key.patient_id):
        return (
            f"the study belongs to patient {study['patient_id']!r}; this instance names "
            f"patient {key.patient_id!r}"
        )
    known = Demographics(study["patient_name"] or "", study["patient_birth_date"] or "")
    return identity_conflict(known, found) or "patient differs from the study's"


def conflict_row(
    archive: str,
    key: PatientKey,
    *,
    known: dict[str, Any],
    found: Demographics,
    header: InstanceHeader,
    parsed: Parsed,
    reason: str,
    scope: str,
) -> dict[str, Any]:
    return {
        "archive": archive,
        "issuer": key.issuer,
        "patient_id": key.patient_id,
        "known_name": known["patient_name"],
        "known_birth_date": known["patient_birth_date"],
        "found_name": found.name,
        "found_birth_date": found.birth_date,
        "study_uid": header.study_instance_uid,
        "sop_instance_uid": header.sop_instance_uid,
        "path": parsed.stat.path,
        "reason": reason,
        "scope": scope,
        "status": "open",
        "detected_at": utc_now(),
    }


def not_yet_recorded(
    conn: Connection, archive: str, conflicts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A conflict between the same two identities of a patient is recorded once, whichever
    file shows it and however often it is scanned again."""
    if not conflicts:
        return []
    c = identity_conflicts.c
    seen: set[tuple[Any, ...]] = set()
    for chunk in chunks(sorted({x["patient_id"] for x in conflicts})):
        query = select(identity_conflicts).where(  # a resolved one is not raised again
            c.archive == archive, c.patient_id.in_(chunk)
        )
        seen.update(identities(dict(row._mapping)) for row in conn.execute(query))
    fresh = []
    for conflict in conflicts:
        mark = identities(conflict)
        if mark not in seen:
            seen.add(mark)
            fresh.append(conflict)
    return fresh


def identities(conflict: dict[str, Any]) -> tuple[Any, ...]:
    pair = frozenset(
        {
            (fold(conflict["known_name"]), conflict["known_birth_date"] or ""),
            (fold(conflict["found_name"]), conflict["found_birth_date"] or ""),
        }
    )
    return conflict["issuer"], conflict["patient_id"], conflict["scope"], pair
