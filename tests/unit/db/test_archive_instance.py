"""The short way of indexing one new instance keeps the index the batch path builds:
the same batches (new instances, a second series, a patient under another name, a
quarantined instance, duplicates, a changed file, removals) applied with and without
it give the same rows, and its counts equal a recount of every level."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select

from pacsync.db import archive_instance
from pacsync.db.archive_batches import Touched
from pacsync.db.archive_counts import recount
from pacsync.db.archive_index import ArchiveIndexStore
from pacsync.db.archive_tables import (
    archive_files,
    identity_conflicts,
    image_instances,
    image_patients,
    image_series,
    image_studies,
)
from pacsync.db.archives import ArchiveStore
from pacsync.db.store import open_store
from pacsync.domain.imaging import InstanceHeader
from pacsync.imaging.ports import FileStat, IndexChanges, Parsed
from pacsync.security.secrets import SecretBox

ARCHIVE = "inbox"
# what differs between two stores given the same batches: ids and times
_VOLATILE = {"id", "file_id", "updated_at", "indexed_at", "detected_at"}


def header(sop: str, *, study: str = "1.2.1", series: str = "1.2.1.1", patient: str = "P1",
           name: str = "DOE^JOHN", modality: str = "CT") -> InstanceHeader:  # fmt: skip
    return InstanceHeader(
        sop_instance_uid=sop, study_instance_uid=study, series_instance_uid=series,
        patient_id=patient, patient_name=name, patient_birth_date="19700101",
        patient_sex="M", modality=modality, study_date="20240105",
    )  # fmt: skip


def parsed(path: str, h: InstanceHeader, content: str = "a") -> IndexChanges:
    return IndexChanges(parsed=[Parsed(FileStat(path, 100, 1, 1), h, content_hash=content)])


class Index:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.store = ArchiveIndexStore(engine)
        ArchiveStore(engine, box).add(ARCHIVE, "dicom", "/inbox", rescan_minutes=0)

    def add(self, path: str, h: InstanceHeader, content: str = "a") -> int:
        return self.store.apply(ARCHIVE, parsed(path, h, content))

    def remove(self, *paths: str) -> None:
        known = self.store.known_files(ARCHIVE)
        self.store.apply(ARCHIVE, IndexChanges(deleted=[known[p] for p in paths]))

    def rows(self, table: Table) -> list[tuple[Any, ...]]:
        columns = [c for c in table.c if c.name not in _VOLATILE]
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(*columns)).all(), key=repr)

    def everything(self) -> dict[str, list[tuple[Any, ...]]]:
        tables = (archive_files, image_instances, image_series, image_studies, image_patients,
                  identity_conflicts)  # fmt: skip
        return {table.name: self.rows(table) for table in tables}

    def recounted(self) -> dict[str, list[tuple[Any, ...]]]:
        """The index after every series, study and patient is recounted."""
        with self.engine.begin() as conn:
            touched = Touched(
                studies=set(conn.execute(select(image_studies.c.study_uid)).scalars()),
                series=set(conn.execute(select(image_series.c.series_uid)).scalars()),
                patients={(r.issuer, r.patient_id) for r in conn.execute(
                    select(image_patients.c.issuer, image_patients.c.patient_id))},
            )  # fmt: skip
            recount(conn, ARCHIVE, touched)
        return self.everything()


def mixed_batches(index: Index) -> None:
    index.add("a/1.dcm", header("1.2.1.1.1"))  # a new study, series and patient
    index.add("a/2.dcm", header("1.2.1.1.2"))
    index.add("a/3.dcm", header("1.2.1.2.1", series="1.2.1.2", modality="MR"))
    # the same patient ID under another name in another study: a conflict for review
    index.add("b/1.dcm", header("1.2.2.1.1", study="1.2.2", series="1.2.2.1", name="DOE^JANE"))
    # another patient in study 1.2.1: quarantined
    index.add("a/4.dcm", header("1.2.1.1.4", patient="P2", name="ROE^RICHARD"))
    index.add("dup/1.dcm", header("1.2.1.1.1"))  # a second copy: the last one holds it
    index.add("a/2.dcm", header("1.2.1.1.2"), content="b")  # the file changed
    index.add("c/1.dcm", header("1.2.3.1.1", study="1.2.3", series="1.2.3.1", patient="P3",
                                name="POE^EDGAR"))  # fmt: skip
    index.remove("c/1.dcm")  # its study and patient go with it
    index.add("a/5.dcm", header("1.2.1.1.5"))
    # a series UID already filed under study 1.2.1, named again under study 1.2.4
    index.add("d/1.dcm", header("1.2.4.1.1", study="1.2.4", series="1.2.1.1", patient="P4",
                                name="DOE^ANNA"))  # fmt: skip
    index.remove("a/3.dcm")  # the MR series is empty: gone, and its modality
    index.add("a/6.dcm", header("1.2.1.3.1", series="1.2.1.3", modality="SR"))
    index.add("b/2.dcm", header("1.2.2.1.2", study="1.2.2", series="1.2.2.1", name="Doe^Jane"))


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(bytes(range(32)))


def fresh(tmp_path: Path, name: str, box: SecretBox) -> Index:
    return Index(open_store(f"sqlite:///{tmp_path / name}"), box)


def test_the_short_way_builds_the_index_the_batch_path_builds(
    tmp_path: Path, box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = fresh(tmp_path, "short.db", box)
    taken: list[str] = []
    add: Callable[..., int | None] = archive_instance.add

    def counted(conn: Any, archive: str, p: Parsed) -> int | None:
        done = add(conn, archive, p)
        if done is not None:
            taken.append(p.stat.path)
        return done

    monkeypatch.setattr(archive_instance, "add", counted)
    mixed_batches(short)
    monkeypatch.setattr(archive_instance, "add", lambda *_: None)
    batch = fresh(tmp_path, "batch.db", box)
    mixed_batches(batch)

    assert taken == ["a/1.dcm", "a/2.dcm", "a/3.dcm", "b/1.dcm", "c/1.dcm", "a/5.dcm",
                     "a/6.dcm", "b/2.dcm"]  # fmt: skip
    assert short.everything() == batch.everything()
    studies = {row.study_uid: row for row in _studies(short)}
    # series 1.2.1.1 holds 1.2.1.1.1, .2, .5 and the instance filed under it from study
    # 1.2.4; the SR series the other; the MR series is gone
    assert (studies["1.2.1"].instance_count, studies["1.2.1"].series_count) == (5, 2)
    assert studies["1.2.1"].modalities == "CT\\SR"
    assert len(short.rows(identity_conflicts)) == 2  # the other name, the other patient
    for engine in (short.engine, batch.engine):
        engine.dispose()


def test_counts_kept_by_the_short_way_equal_a_recount(tmp_path: Path, box: SecretBox) -> None:
    index = fresh(tmp_path, "store.db", box)
    mixed_batches(index)
    for n in range(7, 12):
        index.add(f"a/{n}.dcm", header(f"1.2.1.4.{n}", series="1.2.1.4", modality="MR"))
    before = index.everything()
    after = index.recounted()
    # a patient takes the demographics of its study updated last: a recount of every
    # study updates them all, so only the patients' counts compare
    for rows in (before, after):
        rows["image_patients"] = [(r[1], r[2], r[-1]) for r in rows["image_patients"]]
    assert after == before
    patients = {row[2]: row for row in index.rows(image_patients)}
    # P3 went with its only study; P4's study holds no series of its own
    assert set(patients) == {"P1"}
    assert patients["P1"][-1] == 2  # its two studies
    index.engine.dispose()


def _studies(index: Index) -> list[Any]:
    with index.engine.connect() as conn:
        return list(conn.execute(select(image_studies)))


@pytest.mark.integration
def test_on_postgresql_the_same_batches_build_the_same_index(
    tmp_path: Path, box: SecretBox, pg_url: str
) -> None:
    postgres = Index(open_store(pg_url), box)
    sqlite = fresh(tmp_path, "store.db", box)
    mixed_batches(postgres)
    mixed_batches(sqlite)
    assert postgres.everything() == sqlite.everything()
    assert len(postgres.rows(image_instances)) == 8
    for engine in (postgres.engine, sqlite.engine):
        engine.dispose()
