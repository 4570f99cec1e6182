"""Scans of a legacy store (a catalog of images and a folder of their files) into the
SQLite index, the catalog faked: row changes, missing files, a database that is down."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pacsync.connectors.files.tree import root_trouble, stat_file
from pacsync.connectors.memory import MemoryCatalog
from pacsync.db.archive_index import ArchiveIndexStore
from pacsync.db.archive_search import ArchiveSearch
from pacsync.db.archives import ArchiveStore
from pacsync.domain.imaging import InstanceHeader
from pacsync.errors import ConnectionTimeout
from pacsync.imaging.legacy_scan import LegacyScan
from pacsync.imaging.ports import LegacyImage
from pacsync.imaging.scan import ScanResult
from pacsync.imaging.search import Query
from pacsync.security.secrets import SecretBox

J2K = "1.2.840.10008.1.2.4.90"


def image(n: int, name: str = "MAXWELL^FELIX") -> LegacyImage:
    header = InstanceHeader(
        sop_instance_uid=f"1.9.{n}",
        study_instance_uid="1.9",
        series_instance_uid="1.9.0",
        patient_id="639380",
        patient_name=name,
        patient_birth_date="19610214",
        modality="CT",
        transfer_syntax_uid=J2K,
    )
    return LegacyImage(header, f"2024/{n}.j2k")


class Legacy:
    def __init__(self, root: Path, engine: Engine, box: SecretBox) -> None:
        self.root, self.engine = root, engine
        self.catalog = MemoryCatalog([image(n) for n in range(1, 4)])
        for listed in self.catalog.images_listed:
            (root / listed.relative_path).parent.mkdir(parents=True, exist_ok=True)
            (root / listed.relative_path).write_bytes(b"\xff\x4f\xff\x51")
        ArchiveStore(engine, box).add("nas2", "firebird-j2k", str(root))

    def scan(self, full: bool = False) -> ScanResult:
        return LegacyScan(
            "nas2", str(self.root), catalog=self.catalog, index=ArchiveIndexStore(self.engine),
            stat=stat_file, root_online=root_trouble,
        ).run(full=full)  # fmt: skip

    def names(self) -> list[str]:
        rows = ArchiveSearch(self.engine).search(Query.build("instance", {}))
        return sorted(f"{r['SOPInstanceUID']} {r['PatientName']}" for r in rows)


@pytest.fixture
def legacy(tmp_path: Path, engine: Engine, box: SecretBox) -> Legacy:
    root = tmp_path / "nas2"
    root.mkdir()
    return Legacy(root, engine, box)


def test_every_listed_image_is_indexed_and_an_unchanged_store_is_left_alone(
    legacy: Legacy,
) -> None:
    first = legacy.scan()
    assert (first.status, first.counts.new, first.counts.indexed) == ("online", 3, 3)
    assert legacy.catalog.closed
    again = legacy.scan()
    assert (again.counts.unchanged, again.counts.indexed) == (3, 0)


def test_a_changed_row_re_indexes_that_image_only(legacy: Legacy) -> None:
    legacy.scan()
    legacy.catalog.images_listed[1] = dataclasses.replace(
        legacy.catalog.images_listed[1],
        header=dataclasses.replace(legacy.catalog.images_listed[1].header, series_number=7),
    )
    result = legacy.scan()
    assert (result.counts.changed, result.counts.unchanged, result.counts.indexed) == (1, 2, 1)


def test_a_missing_image_file_is_recorded_and_a_dropped_row_deleted(legacy: Legacy) -> None:
    legacy.scan()
    (legacy.root / "2024/1.j2k").unlink()
    del legacy.catalog.images_listed[2]
    result = legacy.scan()
    assert (result.counts.unreadable, result.counts.deleted) == (1, 1)
    assert legacy.names() == ["1.9.2 MAXWELL^FELIX"]


def test_a_database_that_is_down_marks_the_archive_offline_and_keeps_the_index(
    legacy: Legacy, engine: Engine, box: SecretBox
) -> None:
    legacy.scan()
    legacy.catalog.down = ConnectionTimeout("legacy database nas2 is unreachable")
    result = legacy.scan()
    assert result.status == "offline"
    assert "unreachable" in (result.reason or "")
    assert ArchiveStore(engine, box).require("nas2").status == "offline"
    assert len(legacy.names()) == 3


def test_a_vanished_image_root_is_offline_before_anything_is_read(legacy: Legacy) -> None:
    legacy.scan()
    legacy.root.rename(legacy.root.with_name("gone"))
    result = legacy.scan()
    assert result.status == "offline"
    assert len(legacy.names()) == 3
