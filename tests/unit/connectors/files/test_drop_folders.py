"""Drop folders on disk: which files are complete, their identity, where they go."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pacsync.connectors.files.drops import FolderDrops
from pacsync.domain.drops import FileReport
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import DropFolderUnavailable

NOW = 1_800_000_000.0  # the clock the folders are looked at with


def spec(root: Path, **drop: Any) -> PipelineSpec:
    source = {"drop": "in", "pattern": "p_*.csv", "format": "csv", "key": ["id"], **drop}
    return PipelineSpec.model_validate(
        {
            "name": "pms",
            "connections": {"exports": {"url": f"file:{root}"}, "wh": {"url": "sqlite://"}},
            "source": {"connection": "exports"},
            "destination": {"connection": "wh"},
            "entities": {
                "p": {
                    "source": source,
                    "target": {"table": "p"},
                    "fields": {"id": {"from": "id"}},
                }
            },
        }
    )


def put(folder: Path, name: str, age_s: float, text: str = "id\n1\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def test_quiet_files_matching_the_pattern_are_ready_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    put(folder, "p_2.csv", 60)
    put(folder, "p_1.csv", 60)
    put(folder, "p_3.csv", 1)  # still being written
    for skipped in ("x_1.csv", ".p_4.csv", "p_5.csv.tmp", "p_6.csv.part", "p_7.csv~"):
        put(folder, skipped, 60)
    (folder / "archive").mkdir()

    drops = FolderDrops(spec(tmp_path, quiet_s=5), clock=lambda: NOW)

    assert drops.ready("p") == ["p_1.csv", "p_2.csv"]


def test_with_markers_only_files_with_their_marker_are_ready(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    put(folder, "p_1.csv", 0)
    put(folder, "p_2.csv", 600)
    put(folder, "p_1.csv.done", 0, "")

    drops = FolderDrops(spec(tmp_path, ready="marker"), clock=lambda: NOW)

    assert drops.ready("p") == ["p_1.csv"]


def test_identity_has_size_mtime_and_content_hash(tmp_path: Path) -> None:
    path = put(tmp_path / "in", "p_1.csv", 60, "id\n42\n")
    drops = FolderDrops(spec(tmp_path), clock=lambda: NOW)

    identity = drops.identify("p", "p_1.csv")

    assert identity is not None
    assert (identity.name, identity.size) == ("p_1.csv", 6)
    assert identity.mtime_ns == path.stat().st_mtime_ns
    assert identity.sha256 == hashlib.sha256(b"id\n42\n").hexdigest()
    assert drops.identify("p", "p_9.csv") is None


def test_finish_moves_the_file_with_a_timestamp_and_writes_its_report(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    put(folder, "p_1.csv", 60)
    put(folder, "p_1.csv.done", 60, "")
    put(folder, "p_2.csv", 60)
    drops = FolderDrops(spec(tmp_path, ready="marker"), clock=lambda: NOW)

    loaded = drops.finish("p", "p_1.csv", FileReport("p_1.csv", records=1, outcome="archived"))
    refused = drops.finish("p", "p_2.csv", FileReport("p_2.csv", outcome="refused", reason="x"))

    assert loaded == str(folder / "archive" / "p_1.20270115T080000Z.csv")
    assert refused == str(folder / "error" / "p_2.20270115T080000Z.csv")
    assert sorted(p.name for p in folder.iterdir()) == ["archive", "error"]  # marker gone
    report = json.loads(Path(loaded + ".report.json").read_text())
    assert (report["file"], report["records"], report["outcome"]) == ("p_1.csv", 1, "archived")
    assert json.loads(Path(refused + ".report.json").read_text())["reason"] == "x"


def test_a_second_file_of_the_same_name_and_second_is_not_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    drops = FolderDrops(spec(tmp_path), clock=lambda: NOW)
    put(folder, "p_1.csv", 60, "first")
    first = drops.finish("p", "p_1.csv", FileReport("p_1.csv", outcome="archived"))
    put(folder, "p_1.csv", 60, "second")

    second = drops.finish("p", "p_1.csv", FileReport("p_1.csv", outcome="archived"))

    assert second != first
    assert Path(first).read_text() == "first"
    assert Path(second).read_text() == "second"


def test_a_missing_drop_folder_is_a_transient_error(tmp_path: Path) -> None:
    drops = FolderDrops(spec(tmp_path / "gone"), clock=lambda: NOW)

    with pytest.raises(DropFolderUnavailable) as error:
        drops.ready("p")

    assert error.value.code == "PACS-304"
    assert error.value.transient
    assert "not found" in error.value.message


def test_records_of_a_file_are_read_with_the_entity_format(tmp_path: Path) -> None:
    put(tmp_path / "in", "p_1.csv", 60, "id;name\n1;Ann\n")
    drops = FolderDrops(spec(tmp_path, delimiter=";"), clock=lambda: NOW)

    with drops.records("p", "p_1.csv", ["id"]) as records:
        assert records.columns == ["id", "name"]
        assert [r.values for r in records] == [("1", "Ann")]


def test_check_lists_every_entity_folder(tmp_path: Path) -> None:
    drops = FolderDrops(spec(tmp_path), clock=lambda: NOW)
    with pytest.raises(DropFolderUnavailable, match="in not found"):
        drops.check()
    (tmp_path / "in").mkdir()

    drops.check()

    assert drops.ready("p") == []
