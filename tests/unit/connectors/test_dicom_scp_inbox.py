"""The C-STORE inbox without a network: bytes kept as received, the duplicate
policy, and failures that leave nothing stored or indexed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imaging_data import realistic_ct
from pacsync.connectors.dicom import inbox as inbox_module
from pacsync.connectors.dicom.inbox import INCOMING, Inbox, Outcome
from pacsync.errors import InvalidDicom, StoreUnavailable
from pacsync.imaging.ports import IndexChanges, KnownFile

STUDY = "1.2.826.0.1.3680043.10.3001.1"
SOP = f"{STUDY}.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"


class FakeIndex:
    def __init__(self, fail: bool = False) -> None:
        self.applied: list[IndexChanges] = []
        self.fail = fail

    def apply(self, archive: str, changes: IndexChanges) -> int:
        if self.fail:
            raise StoreUnavailable("the store is gone")
        self.applied.append(changes)
        return 0

    def known_files(self, archive: str) -> dict[str, KnownFile]:
        files = [p.stat for c in self.applied for p in c.parsed]
        gone = {k.stat.path for c in self.applied for k in c.deleted}
        return {
            f.path: KnownFile(n, f, "indexed", None, SOP)
            for n, f in enumerate(files)
            if f.path not in gone
        }

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the inbox does not call {name}")


def part10(tmp_path: Path, number: int = 1) -> bytes:
    path = tmp_path / f"source{number}.dcm"
    realistic_ct(path, patient_id="P1", patient_name="DOE^JOHN", study_uid=STUDY,
                 series_uid=f"{STUDY}.1", sop_uid=SOP, instance_number=number, rows=16,
                 columns=16)  # fmt: skip
    return path.read_bytes()


def stored(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_the_bytes_are_kept_as_received_and_indexed(tmp_path: Path) -> None:
    index = FakeIndex()
    inbox = Inbox("inbox", tmp_path / "inbox", index)  # type: ignore[arg-type]
    data = part10(tmp_path)
    received = inbox.receive(data, SOP, CT)
    assert received.outcome is Outcome.STORED
    assert received.path == f"{STUDY}/{STUDY}.1/{SOP}.dcm"
    assert (tmp_path / "inbox" / received.path).read_bytes() == data
    (changes,) = index.applied
    assert [p.stat.path for p in changes.parsed] == [received.path]
    assert changes.parsed[0].header is not None
    assert changes.parsed[0].header.sop_instance_uid == SOP


def test_the_same_bytes_again_change_nothing_and_other_bytes_replace(tmp_path: Path) -> None:
    index = FakeIndex()
    inbox = Inbox("inbox", tmp_path / "inbox", index)  # type: ignore[arg-type]
    first, second = part10(tmp_path, 1), part10(tmp_path, 2)
    inbox.receive(first, SOP, CT)
    assert inbox.receive(first, SOP, CT).outcome is Outcome.UNCHANGED
    assert len(index.applied) == 1
    again = inbox.receive(second, SOP, CT)
    assert again.outcome is Outcome.REPLACED
    assert (tmp_path / "inbox" / again.path).read_bytes() == second
    assert len(index.applied) == 2
    assert stored(tmp_path / "inbox") == [tmp_path / "inbox" / again.path]


def test_an_unreadable_dataset_leaves_nothing(tmp_path: Path) -> None:
    index = FakeIndex()
    inbox = Inbox("inbox", tmp_path / "inbox", index)  # type: ignore[arg-type]
    with pytest.raises(InvalidDicom):
        inbox.receive(part10(tmp_path)[:400], SOP, CT)
    with pytest.raises(InvalidDicom):
        inbox.receive(part10(tmp_path), "1.2.3.4", CT)  # not the announced instance
    assert stored(tmp_path / "inbox") == []
    assert index.applied == []


def test_a_write_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = FakeIndex()
    inbox = Inbox("inbox", tmp_path / "inbox", index)  # type: ignore[arg-type]

    def full(temp: Path, data: bytes) -> None:
        temp.write_bytes(data[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(inbox, "_write", full)
    with pytest.raises(OSError, match="No space"):
        inbox.receive(part10(tmp_path), SOP, CT)
    assert stored(tmp_path / "inbox") == []
    assert index.applied == []


def test_an_index_failure_removes_the_new_file_and_restores_a_replaced_one(
    tmp_path: Path,
) -> None:
    index = FakeIndex()
    inbox = Inbox("inbox", tmp_path / "inbox", index)  # type: ignore[arg-type]
    first = part10(tmp_path, 1)
    path = tmp_path / "inbox" / inbox.receive(first, SOP, CT).path
    index.fail = True
    with pytest.raises(StoreUnavailable):
        inbox.receive(part10(tmp_path, 2), SOP, CT)
    assert path.read_bytes() == first
    assert stored(tmp_path / "inbox") == [path]
    fresh = Inbox("other", tmp_path / "other", FakeIndex(fail=True))  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable):
        fresh.receive(first, SOP, CT)
    assert stored(tmp_path / "other") == []
    assert (tmp_path / "other" / INCOMING).is_dir()


def test_a_failed_flush_takes_the_new_file_out_of_the_index_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = FakeIndex()
    inbox = Inbox("inbox", tmp_path / "inbox", index)  # type: ignore[arg-type]

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(inbox_module.os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output"):
        inbox.receive(part10(tmp_path), SOP, CT)
    inbox.close()
    assert stored(tmp_path / "inbox") == []
    assert index.known_files("inbox") == {}
    assert [len(c.deleted) for c in index.applied] == [0, 1]  # indexed meanwhile, then withdrawn


def test_a_replacement_waits_for_its_flush_before_the_stored_copy_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = FakeIndex()
    inbox = Inbox("inbox", tmp_path / "inbox", index)  # type: ignore[arg-type]
    first = part10(tmp_path, 1)
    path = tmp_path / "inbox" / inbox.receive(first, SOP, CT).path

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(inbox_module.os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output"):
        inbox.receive(part10(tmp_path, 2), SOP, CT)
    inbox.close()
    assert path.read_bytes() == first
    assert stored(tmp_path / "inbox") == [path]
    assert len(index.applied) == 1  # the replacement was never indexed
