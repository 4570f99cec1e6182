"""The archive index in the store: files, and the patients, studies, series and
instances their headers describe (an :class:`pacsync.imaging.ports.ArchiveIndex`).

One batch of a scan is one transaction.  A re-read file replaces the instance it
held; counts and modalities are recomputed for every study and series a batch
touched, and levels left empty are removed.

The identity rule (:mod:`pacsync.domain.imaging`) is applied here, where the
known demographics are: an instance whose patient differs from the patient of the
study it names is quarantined (indexed, never served under that study) and an
identity conflict is recorded; the same patient ID with another name or birth date
in another study is recorded as a conflict for review, each study keeping the
demographics of its own headers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from pacsync.connectors.sql.errors import translated
from pacsync.db.archive_tables import (
    archive_files,
    archives,
    identity_conflicts,
    image_instances,
    image_patients,
    image_series,
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
from pacsync.imaging.ports import FileStat, IndexChanges, KnownFile, Parsed

_f, _i, _se, _st, _p = (
    archive_files.c,
    image_instances.c,
    image_series.c,
    image_studies.c,
    image_patients.c,
)
CHUNK = 400  # keys per IN list


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


@dataclass(slots=True)
class _Touched:
    studies: set[str]
    series: set[str]
    patients: set[tuple[str, str]]


class ArchiveIndexStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- files ----------------------------------------------------------------------------------

    def known_files(self, archive: str) -> dict[str, KnownFile]:
        query = select(
            _f.id, _f.path, _f.size, _f.mtime_ns, _f.inode, _f.state, _f.content_hash,
            _f.sop_instance_uid,
        ).where(_f.archive == archive)  # fmt: skip
        with translated("store"), self.engine.connect() as conn:
            return {
                row.path: KnownFile(
                    row.id,
                    FileStat(row.path, row.size, row.mtime_ns, row.inode),
                    row.state,
                    row.content_hash,
                    row.sop_instance_uid,
                )
                for row in conn.execute(query)
            }

    def set_status(
        self, archive: str, status: str, reason: str | None, scan: dict[str, Any] | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status, "status_reason": reason}
        if scan is not None:
            values |= {"last_scan": scan, "last_scan_at": utc_now()}
        with translated("store"), self.engine.begin() as conn:
            conn.execute(update(archives).where(archives.c.name == archive).values(**values))

    # -- one batch ------------------------------------------------------------------------------

    def apply(self, archive: str, changes: IndexChanges) -> int:
        touched = _Touched(set(), set(), set())
        with translated("store"), self.engine.begin() as conn:
            for known, stat in changes.moved:
                _restat(conn, known.id, stat)
            for known in changes.touched:
                conn.execute(
                    update(archive_files)
                    .where(_f.id == known.id)
                    .values(size=known.stat.size, mtime_ns=known.stat.mtime_ns,
                            inode=known.stat.inode)
                )  # fmt: skip
            file_ids = _upsert_files(conn, archive, changes.parsed)
            headers = [(file_ids[p.stat.path], p) for p in changes.parsed if p.header is not None]
            stale = list(file_ids.values()) + [k.id for k in changes.deleted]
            sops = [p.header.sop_instance_uid for _, p in headers if p.header is not None]
            _drop_instances(conn, archive, stale, sops, touched)
            conflicts = _add_instances(conn, archive, headers, touched)
            for ids in _chunks([k.id for k in changes.deleted]):
                conn.execute(delete(archive_files).where(_f.id.in_(ids)))
            _recount(conn, archive, touched)
        return conflicts


def _restat(conn: Connection, file_id: int, stat: FileStat) -> None:
    conn.execute(
        update(archive_files)
        .where(_f.id == file_id)
        .values(path=stat.path, size=stat.size, mtime_ns=stat.mtime_ns, inode=stat.inode)
    )


def _upsert_files(conn: Connection, archive: str, parsed: Sequence[Parsed]) -> dict[str, int]:
    """The file row of each parsed file (created or brought up to date): id by path."""
    paths = [p.stat.path for p in parsed]
    ids: dict[str, int] = {}
    for chunk in _chunks(paths):
        query = select(_f.path, _f.id).where(_f.archive == archive, _f.path.in_(chunk))
        ids.update({row.path: row.id for row in conn.execute(query)})
    now = utc_now()

    def values(p: Parsed) -> dict[str, Any]:
        return {
            "size": p.stat.size,
            "mtime_ns": p.stat.mtime_ns,
            "inode": p.stat.inode,
            "content_hash": p.content_hash,
            "state": p.state,
            "reason": p.reason,
            "sop_instance_uid": p.header.sop_instance_uid if p.header else None,
            "indexed_at": now,
        }

    new = [{"archive": archive, "path": p.stat.path, **values(p)} for p in parsed
           if p.stat.path not in ids]  # fmt: skip
    if new:
        conn.execute(insert(archive_files), new)
        for chunk in _chunks([row["path"] for row in new]):
            query = select(_f.path, _f.id).where(_f.archive == archive, _f.path.in_(chunk))
            ids.update({row.path: row.id for row in conn.execute(query)})
    created = {row["path"] for row in new}
    for p in parsed:
        if p.stat.path in created:
            continue
        conn.execute(update(archive_files).where(_f.id == ids[p.stat.path]).values(**values(p)))
    return ids


def _drop_instances(
    conn: Connection, archive: str, file_ids: Sequence[int], sops: Sequence[str], touched: _Touched
) -> None:
    """Remove the instances these files held, and any other copy of these SOP instances."""
    for column, keys in ((_i.file_id, file_ids), (_i.sop_instance_uid, sops)):
        for chunk in _chunks(list(keys)):
            where = and_(_i.archive == archive, column.in_(chunk))
            for row in conn.execute(select(_i.study_uid, _i.series_uid).where(where)):
                touched.studies.add(row.study_uid)
                touched.series.add(row.series_uid)
            conn.execute(delete(image_instances).where(where))


def _add_instances(
    conn: Connection, archive: str, headers: Sequence[tuple[int, Parsed]], touched: _Touched
) -> int:
    """Insert the instances, creating their series, studies and patients; the identity
    conflicts found."""
    if not headers:
        return 0
    studies = _studies(conn, archive, {p.header.study_instance_uid or "" for _, p in headers
                                       if p.header})  # fmt: skip
    patients = _patients(conn, archive, {PatientKey.of(archive, p.header) for _, p in headers
                                         if p.header})  # fmt: skip
    series = _series(conn, archive, {p.header.series_instance_uid or "" for _, p in headers
                                     if p.header})  # fmt: skip
    now = utc_now()
    conflicts: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    checked: dict[tuple[PatientKey, str], tuple[dict[str, Any], str] | None] = {}
    for file_id, parsed in headers:
        header = parsed.header
        assert header is not None
        key = PatientKey.of(archive, header)
        found = Demographics.of(header)
        study_uid = header.study_instance_uid or ""
        study = studies.get(study_uid)
        quarantined = False
        if study is None:
            study = _new_study(archive, header, key, now)
            conn.execute(insert(image_studies).values(**_stored(study)))
            studies[study_uid] = study
        if (study["issuer"], study["patient_id"]) != (key.issuer, key.patient_id) or (
            reason := identity_conflict(
                Demographics(study["patient_name"] or "", study["patient_birth_date"] or ""),
                found,
            )
        ):
            if study["instances_left"] == 0:  # nothing else left in it: it takes this patient
                touched.patients.add((study["issuer"], study["patient_id"]))
                study.update(_new_study(archive, header, key, now))
                conn.execute(
                    update(image_studies)
                    .where(_st.archive == archive, _st.study_uid == study_uid)
                    .values(**study_values(study))
                )
            else:
                quarantined = True
                why = _study_conflict(study, key, found)
                conflicts.append(
                    _conflict(archive, key, known=study, found=found, header=header,
                              parsed=parsed, reason=why, scope="study")
                )  # fmt: skip
        if not quarantined:
            study["instances_left"] = int(study["instances_left"]) + 1
            if key not in patients:
                patients[key] = {}
                conn.execute(insert(image_patients).values(**_new_patient(key, header)))
            elif other := _other_study_of(
                conn, archive, key=key, study_uid=study_uid, found=found, checked=checked
            ):
                flagged, reason = other
                conflicts.append(
                    _conflict(
                        archive,
                        key,
                        known=flagged,
                        found=found,
                        header=header,
                        parsed=parsed,
                        reason=reason,
                        scope="patient",
                    )
                )
            touched.patients.add((key.issuer, key.patient_id))
        series_uid = header.series_instance_uid or ""
        if series_uid not in series:
            series[series_uid] = study_uid
            conn.execute(insert(image_series).values(**_new_series(archive, header)))
        touched.studies.add(study_uid)
        touched.series.add(series_uid)
        rows.append(_instance_row(archive, file_id, header, quarantined))
    conn.execute(insert(image_instances), rows)
    fresh = _not_yet_recorded(conn, archive, conflicts)
    if fresh:
        conn.execute(insert(identity_conflicts), fresh)
    return len(fresh)


def _other_study_of(
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
    query = select(_st.study_uid, _st.patient_name, _st.patient_birth_date).where(
        _st.archive == archive,
        _st.issuer == key.issuer,
        _st.patient_id == key.patient_id,
        _st.study_uid != study_uid,
    )
    answer = None
    for row in conn.execute(query):
        known = Demographics(row.patient_name or "", row.patient_birth_date or "")
        if reason := identity_conflict(known, found):
            answer = ({"patient_name": row.patient_name,
                       "patient_birth_date": row.patient_birth_date}, reason)  # fmt: skip
            break
    checked[(key, study_uid)] = answer
    return answer


def _stored(study: dict[str, Any]) -> dict[str, Any]:
    """A study's columns (without what a batch keeps beside them)."""
    return {k: v for k, v in study.items() if k in _st}


def study_values(study: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _stored(study).items() if k not in ("archive", "study_uid")}


def _study_conflict(study: dict[str, Any], key: PatientKey, found: Demographics) -> str:
    if (study["issuer"], study["patient_id"]) != (key.issuer, key.patient_id):
        return (
            f"the study belongs to patient {study['patient_id']!r}; this instance names "
            f"patient {key.patient_id!r}"
        )
    known = Demographics(study["patient_name"] or "", study["patient_birth_date"] or "")
    return identity_conflict(known, found) or "patient differs from the study's"


def _conflict(
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


def _not_yet_recorded(
    conn: Connection, archive: str, conflicts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A conflict between the same two identities of a patient is recorded once, whichever
    file shows it and however often it is scanned again."""
    if not conflicts:
        return []
    c = identity_conflicts.c
    seen: set[tuple[Any, ...]] = set()
    for chunk in _chunks(sorted({x["patient_id"] for x in conflicts})):
        query = select(identity_conflicts).where(  # a resolved one is not raised again
            c.archive == archive, c.patient_id.in_(chunk)
        )
        seen.update(_identities(dict(row._mapping)) for row in conn.execute(query))
    fresh = []
    for conflict in conflicts:
        mark = _identities(conflict)
        if mark not in seen:
            seen.add(mark)
            fresh.append(conflict)
    return fresh


def _identities(conflict: dict[str, Any]) -> tuple[Any, ...]:
    pair = frozenset(
        {
            (fold(conflict["known_name"]), conflict["known_birth_date"] or ""),
            (fold(conflict["found_name"]), conflict["found_birth_date"] or ""),
        }
    )
    return conflict["issuer"], conflict["patient_id"], conflict["scope"], pair


def _studies(conn: Connection, archive: str, uids: set[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(uids)):
        query = select(image_studies).where(_st.archive == archive, _st.study_uid.in_(chunk))
        for row in conn.execute(query):
            found[row.study_uid] = dict(row._mapping)
    for chunk in _chunks(sorted(found)):
        query = (
            select(_i.study_uid, func.count())
            .where(_i.archive == archive, _i.study_uid.in_(chunk), _i.quarantined.is_(False))
            .group_by(_i.study_uid)
        )
        left: dict[str, int] = dict(conn.execute(query).all())
        for uid in chunk:
            found[uid]["instances_left"] = left.get(uid, 0)
    return found


def _patients(
    conn: Connection, archive: str, keys: set[PatientKey]
) -> dict[PatientKey, dict[str, Any]]:
    found: dict[PatientKey, dict[str, Any]] = {}
    for chunk in _chunks(sorted({k.patient_id for k in keys})):
        query = select(_p.issuer, _p.patient_id, _p.patient_name, _p.patient_birth_date).where(
            _p.archive == archive, _p.patient_id.in_(chunk)
        )
        for row in conn.execute(query):
            found[PatientKey(archive, row.issuer, row.patient_id)] = dict(row._mapping)
    return found


def _series(conn: Connection, archive: str, uids: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(uids)):
        query = select(_se.series_uid, _se.study_uid).where(
            _se.archive == archive, _se.series_uid.in_(chunk)
        )
        found.update(conn.execute(query).all())
    return found


def _new_study(archive: str, h: InstanceHeader, key: PatientKey, now: Any) -> dict[str, Any]:
    return {
        "archive": archive,
        "study_uid": h.study_instance_uid or "",
        "issuer": key.issuer,
        "patient_id": key.patient_id,
        "patient_name": h.patient_name,
        "name_folded": fold(h.patient_name),
        "patient_birth_date": h.patient_birth_date,
        "patient_sex": h.patient_sex,
        "study_date": h.study_date,
        "study_time": h.study_time,
        "accession_number": h.accession_number,
        "study_description": h.study_description,
        "referring_physician_name": h.referring_physician_name,
        "study_id": h.study_id,
        "character_set": h.specific_character_set,
        "updated_at": now,
        "instances_left": 0,
    }


def _new_patient(key: PatientKey, h: InstanceHeader) -> dict[str, Any]:
    return {
        "archive": key.archive,
        "issuer": key.issuer,
        "patient_id": key.patient_id,
        "patient_name": h.patient_name,
        "name_folded": fold(h.patient_name),
        "patient_birth_date": h.patient_birth_date,
        "patient_sex": h.patient_sex,
    }


def _new_series(archive: str, h: InstanceHeader) -> dict[str, Any]:
    return {
        "archive": archive,
        "series_uid": h.series_instance_uid or "",
        "study_uid": h.study_instance_uid or "",
        "modality": h.modality,
        "series_number": h.series_number,
        "series_description": h.series_description,
        "body_part_examined": h.body_part_examined,
    }


def _instance_row(
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


def _recount(conn: Connection, archive: str, touched: _Touched) -> None:
    """Counts and modalities of what a batch touched; empty levels removed."""
    live = _i.quarantined.is_(False)
    for chunk in _chunks(sorted(touched.series)):
        counts: dict[str, int] = dict(
            conn.execute(
                select(_i.series_uid, func.count())
                .where(_i.archive == archive, _i.series_uid.in_(chunk), live)
                .group_by(_i.series_uid)
            ).all()
        )  # fmt: skip
        held = set(conn.execute(
            select(_i.series_uid).where(_i.archive == archive, _i.series_uid.in_(chunk))
        ).scalars())  # fmt: skip
        for uid in chunk:
            where = and_(_se.archive == archive, _se.series_uid == uid)
            if uid in held:
                conn.execute(update(image_series).where(where).values(
                    instance_count=counts.get(uid, 0)))  # fmt: skip
            else:
                conn.execute(delete(image_series).where(where))
    for chunk in _chunks(sorted(touched.studies)):
        per_study: dict[str, tuple[int, int, set[str]]] = {}
        query = select(_se.study_uid, _se.modality, _se.instance_count).where(
            _se.archive == archive, _se.study_uid.in_(chunk)
        )
        for study_uid, modality, count in conn.execute(query):
            n_series, n_inst, modalities = per_study.get(study_uid, (0, 0, set()))
            if modality:
                modalities.add(modality)
            per_study[study_uid] = (n_series + 1, n_inst + count, modalities)
        for uid in chunk:
            where = and_(_st.archive == archive, _st.study_uid == uid)
            if uid in per_study:
                n_series, n_inst, modalities = per_study[uid]
                conn.execute(update(image_studies).where(where).values(
                    series_count=n_series, instance_count=n_inst,
                    modalities="\\".join(sorted(modalities)), updated_at=utc_now()))  # fmt: skip
            else:
                row = conn.execute(select(_st.issuer, _st.patient_id).where(where)).first()
                if row is not None:
                    touched.patients.add((row.issuer, row.patient_id))
                conn.execute(delete(image_studies).where(where))
    for issuer, patient_id in sorted(touched.patients):
        where = and_(_p.archive == archive, _p.issuer == issuer, _p.patient_id == patient_id)
        n = conn.execute(
            select(func.count()).select_from(image_studies).where(
                _st.archive == archive, _st.issuer == issuer, _st.patient_id == patient_id)
        ).scalar_one()  # fmt: skip
        if n:
            newest = conn.execute(
                select(_st.patient_name, _st.patient_birth_date, _st.patient_sex)
                .where(_st.archive == archive, _st.issuer == issuer, _st.patient_id == patient_id)
                .order_by(_st.updated_at.desc())
                .limit(1)
            ).one()
            conn.execute(update(image_patients).where(where).values(
                study_count=n, patient_name=newest.patient_name,
                name_folded=fold(newest.patient_name),
                patient_birth_date=newest.patient_birth_date, patient_sex=newest.patient_sex,
            ))  # fmt: skip
        else:
            conn.execute(delete(image_patients).where(where))
