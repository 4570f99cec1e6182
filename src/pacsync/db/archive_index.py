"""The archive index in the store: files, and the patients, studies, series and
instances their headers describe (an :class:`pacsync.imaging.ports.ArchiveIndex`).

One batch of a scan is one transaction.  A re-read file replaces the instance it
held; counts and modalities are recomputed for every study and series a batch
touched, and levels left empty are removed.  A batch of one new instance (what the
C-STORE inbox sends) takes the short way of :mod:`pacsync.db.archive_instance`.

The batches of an archive are written one at a time, also from several processes:
on SQLite the writers queue on a file lock beside the database (SQLite's own wait
for its write lock polls, sleeping 1, 2, 5 ms and longer between tries) and then
take the write lock first (``BEGIN IMMEDIATE``: a transaction that reads and then
writes could find the database changed under it and fail); on PostgreSQL they take
a transaction-scoped advisory lock named after the archive.

The identity rule (:mod:`pacsync.domain.imaging`) is applied here, where the
known demographics are: an instance whose patient differs from the patient of the
study it names is quarantined (indexed, never served under that study) and an
identity conflict is recorded; the same patient ID with another name or birth date
in another study is recorded as a conflict for review, each study keeping the
demographics of its own headers."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, select, text, update

from pacsync.connectors.sql.errors import translated
from pacsync.db import archive_instance
from pacsync.db.archive_batches import Touched, chunks
from pacsync.db.archive_counts import recount
from pacsync.db.archive_held import held_patients, held_series, held_studies
from pacsync.db.archive_identity import (
    conflict_row,
    not_yet_recorded,
    other_study_of,
    study_conflict,
)
from pacsync.db.archive_rows import (
    instance_row,
    new_patient,
    new_series,
    new_study,
    stored,
    study_values,
)
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
    PatientKey,
    identity_conflict,
)
from pacsync.imaging.ports import FileStat, IndexChanges, KnownFile, Parsed

_f = archive_files.c
_i = image_instances.c
_st = image_studies.c


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

    def held_back(self, archive: str) -> list[KnownFile]:
        """Files to read again although they did not change: instances held back behind
        a study's patient when the study has nothing else left (the misfiled instance
        that set its patient is gone), and duplicates whose instance no file holds now."""
        f, i, st = _f, _i, _st
        orphaned = (
            select(f.id, f.path, f.size, f.mtime_ns, f.inode, f.state, f.content_hash,
                   f.sop_instance_uid)
            .select_from(
                archive_files.join(image_instances, i.file_id == f.id).join(
                    image_studies, and_(st.archive == i.archive, st.study_uid == i.study_uid)
                )
            )
            .where(f.archive == archive, i.quarantined.is_(True), st.instance_count == 0)
        )  # fmt: skip
        held = select(i.sop_instance_uid).where(i.archive == archive)
        unheld = select(
            f.id, f.path, f.size, f.mtime_ns, f.inode, f.state, f.content_hash,
            f.sop_instance_uid,
        ).where(f.archive == archive, f.state == "duplicate",
                f.sop_instance_uid.not_in(held))  # fmt: skip
        with translated("store"), self.engine.connect() as conn:
            rows = [*conn.execute(orphaned), *conn.execute(unheld)]
        return [
            KnownFile(r.id, FileStat(r.path, r.size, r.mtime_ns, r.inode), r.state,
                      r.content_hash, r.sop_instance_uid)
            for r in rows
        ]  # fmt: skip

    # -- one batch ------------------------------------------------------------------------------

    def apply(self, archive: str, changes: IndexChanges) -> int:
        touched = Touched(set(), set(), set())
        with translated("store"), _queued(self.engine), self.engine.begin() as conn:
            _one_writer(conn, archive)
            if _one_new_file(changes):
                added = archive_instance.add(conn, archive, changes.parsed[0])
                if added is not None:
                    return added
            for known, stat in changes.moved:
                _restat(conn, known.id, stat)
            for known in changes.touched:  # same path and content, a new stat
                _restat(conn, known.id, known.stat)
            file_ids = _upsert_files(conn, archive, changes.parsed)
            headers = _last_copy_wins(conn, [
                (file_ids[p.stat.path], p) for p in changes.parsed if p.header is not None
            ])  # fmt: skip
            stale = list(file_ids.values()) + [k.id for k in changes.deleted]
            sops = {p.header.sop_instance_uid: p.stat.path for _, p in headers if p.header}
            _drop_instances(conn, archive, stale, sops, touched)
            conflicts = _add_instances(conn, archive, headers, touched)
            for ids in chunks([k.id for k in changes.deleted]):
                conn.execute(delete(archive_files).where(_f.id.in_(ids)))
            recount(conn, archive, touched)
        return conflicts


@contextmanager
def _queued(engine: Engine) -> Iterator[None]:
    """Index writers of a SQLite file one after another, woken as soon as it is free."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        yield
        return
    with open(f"{path}.index-writer", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _one_writer(conn: Connection, archive: str) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                     {"name": f"pacsync-archive-index:{archive}"})  # fmt: skip


def _one_new_file(changes: IndexChanges) -> bool:
    return (
        len(changes.parsed) == 1
        and changes.parsed[0].header is not None
        and not (changes.moved or changes.touched or changes.deleted)
    )


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
    for chunk in chunks(paths):
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
        for chunk in chunks([row["path"] for row in new]):
            query = select(_f.path, _f.id).where(_f.archive == archive, _f.path.in_(chunk))
            ids.update({row.path: row.id for row in conn.execute(query)})
    created = {row["path"] for row in new}
    for p in parsed:
        if p.stat.path in created:
            continue
        conn.execute(update(archive_files).where(_f.id == ids[p.stat.path]).values(**values(p)))
    return ids


def _last_copy_wins(
    conn: Connection, headers: list[tuple[int, Parsed]]
) -> list[tuple[int, Parsed]]:
    """One file per SOP instance in a batch: the last read holds it, the others are
    recorded as duplicates of it."""
    kept: dict[str, tuple[int, Parsed]] = {}
    for file_id, parsed in headers:
        assert parsed.header is not None
        earlier = kept.get(parsed.header.sop_instance_uid)
        if earlier is not None:
            _mark_duplicate(conn, [earlier[0]], parsed.stat.path)
        kept[parsed.header.sop_instance_uid] = (file_id, parsed)
    return list(kept.values())


def _mark_duplicate(conn: Connection, file_ids: Sequence[int], holder: str) -> None:
    conn.execute(
        update(archive_files)
        .where(_f.id.in_(file_ids))
        .values(state="duplicate", reason=f"the same SOP Instance UID as {holder}")
    )


def _drop_instances(
    conn: Connection,
    archive: str,
    file_ids: Sequence[int],
    sops: dict[str, str],
    touched: Touched,
) -> None:
    """Remove the instances these files held; another file holding one of these SOP
    instances (``sops``: the path that holds it now) becomes a duplicate."""
    batch = set(file_ids)
    for column, keys in ((_i.file_id, list(file_ids)), (_i.sop_instance_uid, list(sops))):
        for chunk in chunks(keys):
            where = and_(_i.archive == archive, column.in_(chunk))
            query = select(_i.study_uid, _i.series_uid, _i.file_id, _i.sop_instance_uid)
            for row in conn.execute(query.where(where)):
                touched.studies.add(row.study_uid)
                touched.series.add(row.series_uid)
                if row.file_id not in batch:
                    _mark_duplicate(conn, [row.file_id], sops[row.sop_instance_uid])
            conn.execute(delete(image_instances).where(where))


def _add_instances(
    conn: Connection, archive: str, headers: Sequence[tuple[int, Parsed]], touched: Touched
) -> int:
    """Insert the instances, creating their series, studies and patients; the identity
    conflicts found."""
    if not headers:
        return 0
    studies = held_studies(conn, archive, {p.header.study_instance_uid or "" for _, p in headers
                                       if p.header})  # fmt: skip
    patients = held_patients(conn, archive, {PatientKey.of(archive, p.header) for _, p in headers
                                         if p.header})  # fmt: skip
    series = held_series(conn, archive, {p.header.series_instance_uid or "" for _, p in headers
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
            study = new_study(archive, header, key, now)
            conn.execute(insert(image_studies).values(**stored(study)))
            studies[study_uid] = study
        if (study["issuer"], study["patient_id"]) != (key.issuer, key.patient_id) or (
            reason := identity_conflict(
                Demographics(study["patient_name"] or "", study["patient_birth_date"] or ""),
                found,
            )
        ):
            if study["instances_left"] == 0:  # nothing else left in it: it takes this patient
                touched.patients.add((study["issuer"], study["patient_id"]))
                study.update(new_study(archive, header, key, now))
                conn.execute(
                    update(image_studies)
                    .where(_st.archive == archive, _st.study_uid == study_uid)
                    .values(**study_values(study))
                )
            else:
                quarantined = True
                why = study_conflict(study, key, found)
                conflicts.append(
                    conflict_row(archive, key, known=study, found=found, header=header,
                              parsed=parsed, reason=why, scope="study")
                )  # fmt: skip
        if not quarantined:
            study["instances_left"] = int(study["instances_left"]) + 1
            if key not in patients:
                patients[key] = {}
                conn.execute(insert(image_patients).values(**new_patient(key, header)))
            elif key.patient_id and (
                other := other_study_of(
                    conn, archive, key=key, study_uid=study_uid, found=found, checked=checked
                )
            ):
                flagged, reason = other
                conflicts.append(
                    conflict_row(
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
            conn.execute(insert(image_series).values(**new_series(archive, header)))
        touched.studies.add(study_uid)
        touched.series.add(series_uid)
        rows.append(instance_row(archive, file_id, header, quarantined))
    conn.execute(insert(image_instances), rows)
    fresh = not_yet_recorded(conn, archive, conflicts)
    if fresh:
        conn.execute(insert(identity_conflicts), fresh)
    return len(fresh)
