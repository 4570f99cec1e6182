"""Scans of a real folder into the SQLite index, headers given by a fake parse pool:
what is parsed, moved, deleted and kept; the identity rule; a vanishing root."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from pacsync.connectors.files import tree
from pacsync.connectors.memory import MemoryParsePool
from pacsync.db.archive_index import ArchiveIndexStore
from pacsync.db.archive_search import ArchiveSearch
from pacsync.db.archive_tables import identity_conflicts, image_instances
from pacsync.db.archives import ArchiveStore
from pacsync.domain.imaging import InstanceHeader
from pacsync.errors import InvalidState, NotFound
from pacsync.imaging.scan import ArchiveScan, ScanResult
from pacsync.imaging.search import Query
from pacsync.security.secrets import SecretBox


def header(n: int, *, patient: str = "P1", name: str = "DOE^JOHN", study: str = "1.2.3",
           series: str = "1.2.3.1", birth: str = "19700101", modality: str = "CT",
           date: str = "20240105") -> InstanceHeader:  # fmt: skip
    return InstanceHeader(
        sop_instance_uid=f"{series}.{n}",
        study_instance_uid=study,
        series_instance_uid=series,
        patient_id=patient,
        patient_name=name,
        patient_birth_date=birth,
        modality=modality,
        study_date=date,
        instance_number=n,
    )


class Site:
    def __init__(self, root: Path, engine: Engine, box: SecretBox) -> None:
        self.root = root
        self.engine = engine
        self.pool = MemoryParsePool()
        self.index = ArchiveIndexStore(engine)
        self.archives = ArchiveStore(engine, box)
        self.archives.add("ct", "dicom", str(root))
        self.hashed: list[str] = []

    def write(self, path: str, h: InstanceHeader | None = None, content: bytes = b"x") -> Path:
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(content)
        if h is not None:
            self.pool.headers[path] = h
        return file

    def hasher(self, root: str, path: str) -> str:
        self.hashed.append(path)
        return tree.content_hash(root, path)

    def scan(self, full: bool = False) -> ScanResult:
        self.pool.parsed.clear()
        return ArchiveScan(
            "ct", str(self.root), index=self.index, walker=tree.walk, pool=self.pool,
            hasher=self.hasher,
        ).run(full=full)  # fmt: skip

    def instances(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(image_instances)).all()
        return {r.sop_instance_uid: dict(r._mapping) for r in rows}

    def search(self, level: str = "study", **match: str) -> list[dict[str, Any]]:
        return ArchiveSearch(self.engine).search(Query.build(level, match))


@pytest.fixture
def site(tmp_path: Path, engine: Engine, box: SecretBox) -> Site:
    root = tmp_path / "nas"
    root.mkdir()
    return Site(root, engine, box)


def test_first_scan_indexes_every_level_and_a_rescan_parses_nothing(site: Site) -> None:
    for n in range(1, 4):
        site.write(f"a/{n}.dcm", header(n))
    site.write("b/1.dcm", header(1, series="1.2.3.2", modality="SR"))
    site.write("notes.txt")  # not DICOM: recorded, never stops the scan
    first = site.scan()
    assert (first.status, first.counts.new, first.counts.indexed) == ("online", 5, 4)
    assert first.counts.invalid == 1
    (study,) = site.search()
    assert study["NumberOfStudyRelatedSeries"] == 2
    assert study["NumberOfStudyRelatedInstances"] == 4
    assert study["ModalitiesInStudy"] == "CT\\SR"
    assert study["archive"] == "ct"

    again = site.scan()
    assert site.pool.parsed == []
    assert (again.counts.unchanged, again.counts.new, again.counts.changed) == (5, 0, 0)
    assert site.archives.require("ct").counts["instances"] == 4


def test_changed_moved_and_deleted_files(site: Site) -> None:
    for n in range(1, 5):
        site.write(f"{n}.dcm", header(n))
    site.scan()
    # changed: new content (another size) and a new header
    site.write("1.dcm", header(1, modality="MR"), content=b"longer")
    # moved: the same inode under another path
    (site.root / "moved").mkdir()
    os.rename(site.root / "2.dcm", site.root / "moved/2.dcm")
    site.pool.headers["moved/2.dcm"] = site.pool.headers.pop("2.dcm")
    # deleted
    (site.root / "3.dcm").unlink()
    result = site.scan()
    c = result.counts
    assert (c.changed, c.moved, c.deleted, c.new) == (1, 1, 1, 0)
    assert site.pool.parsed == ["1.dcm"]  # the move was not parsed
    instances = site.instances()
    assert sorted(instances) == ["1.2.3.1.1", "1.2.3.1.2", "1.2.3.1.4"]
    (row,) = site.search("instance", SOPInstanceUID="1.2.3.1.2")
    assert row["path"] == "moved/2.dcm"
    (study,) = site.search()
    assert study["ModalitiesInStudy"] == "CT"  # series modality stays the first seen
    assert study["NumberOfStudyRelatedInstances"] == 3


def test_a_copy_over_a_file_with_the_same_size_and_mtime_is_hashed_not_trusted(
    site: Site,
) -> None:
    file = site.write("1.dcm", header(1), content=b"aaaa")
    site.scan()
    stat = file.stat()
    # a copy made beside it (so on another inode), given the same mtime, moved over it
    copy = site.write("copy.tmp", content=b"bbbb")
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(copy, file)
    site.pool.headers["1.dcm"] = header(1, name="DOE^JANE")
    assert file.stat().st_ino != stat.st_ino
    result = site.scan()
    assert site.hashed == ["1.dcm"]
    assert result.counts.hashed == 1
    assert site.pool.parsed == ["1.dcm"]  # no stored hash yet: parsed again, hash kept
    # the same trick again: now a stored hash says the content is unchanged
    stat = file.stat()
    shutil.copy2(file, site.root / "copy.tmp")
    os.replace(site.root / "copy.tmp", file)
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = site.scan()
    assert result.counts.hashed == 1
    assert site.pool.parsed == []


def test_invalid_files_are_not_parsed_again_until_they_change(site: Site) -> None:
    site.write("junk.bin", content=b"garbage")
    assert site.scan().counts.invalid == 1
    site.scan()
    assert site.pool.parsed == []
    (problem,) = site.archives.problem_files("ct")
    assert problem["state"] == "invalid"
    assert "DICM" in problem["reason"]


def test_a_vanished_root_is_marked_offline_and_keeps_its_index(site: Site) -> None:
    for n in range(1, 3):
        site.write(f"{n}.dcm", header(n))
    site.scan()
    shutil.rmtree(site.root)
    result = site.scan()
    assert result.status == "offline"
    assert "missing" in (result.reason or "")
    archive = site.archives.require("ct")
    assert archive.status == "offline"
    assert archive.counts["instances"] == 2


def test_an_empty_mount_point_is_offline_not_a_mass_delete(site: Site) -> None:
    for n in range(1, 3):
        site.write(f"{n}.dcm", header(n))
    site.scan()
    for file in site.root.iterdir():
        file.unlink()
    result = site.scan()
    assert result.status == "offline"
    assert "is the share mounted" in (result.reason or "")
    assert len(site.instances()) == 2


def test_an_unreadable_folder_reported_by_the_walk_keeps_its_entries(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.write("locked/1.dcm", header(1))
    site.write("open/2.dcm", header(2))
    site.scan()
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(tree.os, "scandir", scandir)
    result = site.scan()
    assert result.counts.deleted == 0
    assert result.counts.problems == ["locked: Permission denied"]
    assert len(site.instances()) == 2


def test_same_patient_id_with_another_name_is_a_conflict_never_a_merge(site: Site) -> None:
    site.write("a/1.dcm", header(1, study="1.1", series="1.1.1", name="DOE^JOHN"))
    site.write("b/1.dcm", header(1, study="2.1", series="2.1.1", name="ROE^RICHARD"))
    result = site.scan()
    assert result.counts.conflicts == 1
    studies = {s["StudyInstanceUID"]: s["PatientName"] for s in site.search()}
    assert studies == {"1.1": "DOE^JOHN", "2.1": "ROE^RICHARD"}  # each keeps its own name
    assert [s["StudyInstanceUID"] for s in site.search(PatientName="ROE*")] == ["2.1"]
    (conflict,) = site.archives.identity_conflicts("ct")
    assert conflict["scope"] == "patient"
    assert "name" in conflict["reason"]
    site.scan(full=True)
    assert len(site.archives.identity_conflicts("ct")) == 1  # recorded once


def test_an_instance_naming_another_patient_than_its_study_is_quarantined(site: Site) -> None:
    site.write("1.dcm", header(1, patient="P1", name="DOE^JOHN"))
    site.write("2.dcm", header(2, patient="P2", name="XABA^MXOLISI"))
    result = site.scan()
    assert result.counts.conflicts == 1
    (study,) = site.search()
    assert (study["PatientID"], study["NumberOfStudyRelatedInstances"]) in (
        ("P1", 1),
        ("P2", 1),
    )
    shown = site.search("instance")
    assert len(shown) == 1
    assert shown[0]["PatientID"] == study["PatientID"]  # never under the other patient
    (conflict,) = site.archives.identity_conflicts("ct")
    assert conflict["scope"] == "study"
    with site.engine.connect() as conn:
        assert conn.execute(select(identity_conflicts.c.status)).scalar_one() == "open"


def test_a_re_keyed_name_in_other_case_and_accents_is_the_same_patient(site: Site) -> None:
    site.write("1.dcm", header(1, name="MÜLLER^JÜRGEN"))
    site.write("2.dcm", header(2, name="Muller^Jurgen"))
    assert site.scan().counts.conflicts == 0
    assert len(site.search(PatientName="muller^j*")) == 1


def test_study_of_a_fully_rewritten_patient_takes_the_new_demographics(site: Site) -> None:
    site.write("1.dcm", header(1, name="DOE^JOHN"))
    site.scan()
    site.write("1.dcm", header(1, name="DOE^JOHNNY"), content=b"corrected")
    assert site.scan().counts.conflicts == 0
    (study,) = site.search()
    assert study["PatientName"] == "DOE^JOHNNY"


def test_a_reviewed_conflict_is_closed_once_and_not_raised_again(site: Site) -> None:
    site.write("a/1.dcm", header(1, study="1.1", series="1.1.1", name="DOE^JOHN"))
    site.write("b/1.dcm", header(1, study="2.1", series="2.1.1", name="ROE^RICHARD"))
    site.scan()
    (conflict,) = site.archives.identity_conflicts("ct")
    closed = site.archives.resolve_conflict("ct", conflict["id"], "alice", "two patients")
    assert (closed["status"], closed["resolved_by"]) == ("resolved", "alice")
    with pytest.raises(InvalidState):
        site.archives.resolve_conflict("ct", conflict["id"], "bob", "again")
    with pytest.raises(NotFound):
        site.archives.resolve_conflict("other", conflict["id"], "bob", "wrong archive")
    site.scan(full=True)
    assert site.archives.identity_conflicts("ct") == []
