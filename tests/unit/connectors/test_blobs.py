"""The BlobStore contract, held by the file store and the in-memory fake alike, and
what only the file store does: fan-out layout, atomic writes, LRU eviction."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pacsync.connectors.files.blobs import FileBlobStore
from pacsync.connectors.memory.blobs import MemoryBlobStore
from pacsync.imaging.ports import BlobStore


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "file":
        return FileBlobStore(tmp_path / "blobs")
    return MemoryBlobStore()


def test_a_created_blob_reads_back(store: BlobStore) -> None:
    store.create("thumbnail/1.2.3", b"\x89PNG...")

    assert store.read("thumbnail/1.2.3") == b"\x89PNG..."


def test_a_missing_key_reads_as_none(store: BlobStore) -> None:
    assert store.read("never written") is None
    assert store.read_range("never written", 0, 10) is None


def test_create_replaces_the_blob(store: BlobStore) -> None:
    store.create("k", b"old and longer")
    store.create("k", b"new")

    assert store.read("k") == b"new"


def test_an_empty_blob_is_not_a_missing_one(store: BlobStore) -> None:
    store.create("empty", b"")

    assert store.read("empty") == b""


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0, 3, b"012"), (2, 5, b"234"), (8, 100, b"89"), (10, 20, b""), (4, 4, b""), (50, 60, b"")],
)
def test_read_range_returns_start_to_end_cut_at_the_blob_end(
    store: BlobStore, start: int, end: int, expected: bytes
) -> None:
    store.create("k", b"0123456789")

    assert store.read_range("k", start, end) == expected


@pytest.mark.parametrize(("start", "end"), [(-1, 3), (5, 4)])
def test_a_backwards_or_negative_range_is_a_programming_error(
    store: BlobStore, start: int, end: int
) -> None:
    store.create("k", b"0123456789")

    with pytest.raises(ValueError, match="bad range"):
        store.read_range("k", start, end)


def test_remove_forgets_the_blob_and_removing_twice_is_harmless(store: BlobStore) -> None:
    store.create("k", b"data")

    store.remove("k")
    store.remove("k")
    store.remove("never written")

    assert store.read("k") is None


@pytest.mark.parametrize(
    "key", ["../../etc/passwd", "a/b/c", "/absolute", "ünïcødé ✓", "x" * 2000, "", "."]
)
def test_any_string_is_a_key(store: BlobStore, key: str) -> None:
    store.create(key, b"data")

    assert store.read(key) == b"data"


def test_keys_do_not_collide(store: BlobStore) -> None:
    for number in range(200):
        store.create(f"key-{number}", str(number).encode())

    assert all(store.read(f"key-{n}") == str(n).encode() for n in range(200))


def test_concurrent_writers_of_one_key_leave_one_whole_blob(store: BlobStore) -> None:
    payloads = [bytes([writer]) * 200_000 for writer in range(8)]
    seen: list[bytes | None] = []
    start = threading.Barrier(len(payloads) + 1)

    def write(payload: bytes) -> None:
        start.wait()
        for _ in range(10):
            store.create("shared", payload)

    def read() -> None:
        start.wait()
        for _ in range(50):
            seen.append(store.read("shared"))

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert store.read("shared") in payloads
    assert all(blob is None or blob in payloads for blob in seen)


# The file store only.


def test_files_fan_out_over_two_levels_of_folders(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    blobs.create("a key", b"data")

    path = blobs.path("a key")
    assert path.read_bytes() == b"data"
    assert path.parent.parent.parent == tmp_path
    assert path.parent.name == path.name[2:4]
    assert path.parent.parent.name == path.name[:2]
    assert len(path.name) == 64


def test_blobs_outlive_the_store_object(tmp_path: Path) -> None:
    FileBlobStore(tmp_path).create("k", b"kept")

    assert FileBlobStore(tmp_path).read("k") == b"kept"


def test_a_failed_write_keeps_the_old_blob_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = FileBlobStore(tmp_path)
    blobs.create("k", b"old")

    def crash(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        blobs.create("k", b"new")

    assert blobs.read("k") == b"old"
    assert [p.name for p in blobs.path("k").parent.iterdir()] == [blobs.path("k").name]


def test_a_reader_of_a_blob_being_replaced_gets_old_or_new_never_a_part(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    old, new = b"o" * 1_000_000, b"n" * 1_000_000
    blobs.create("k", old)
    done = threading.Event()
    seen: set[tuple[int, bytes, int] | None] = set()

    def read() -> None:
        while not done.is_set():
            blob = blobs.read("k")
            seen.add(None if blob is None else (len(blob), blob[:1], len(set(blob))))

    reader = threading.Thread(target=read)
    reader.start()
    for payload in [new, old] * 10:
        blobs.create("k", payload)
    done.set()
    reader.join()

    assert seen <= {(1_000_000, b"o", 1), (1_000_000, b"n", 1)}


def test_a_read_refreshes_the_last_use_of_an_old_blob(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    blobs.create("k", b"data")
    long_ago = time.time() - 3600
    os.utime(blobs.path("k"), (long_ago, long_ago))

    blobs.read("k")

    assert blobs.path("k").stat().st_mtime > long_ago + 3000


def aged(blobs: FileBlobStore, key: str, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(blobs.path(key), (when, when))


def fill(blobs: FileBlobStore, count: int, size: int, age: Callable[[int], float]) -> None:
    for number in range(count):
        blobs.create(f"blob-{number}", bytes(size))
        aged(blobs, f"blob-{number}", age(number))


def test_past_the_cap_the_least_recently_used_blobs_go_first(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path, max_bytes=1000)
    fill(blobs, 5, 100, age=lambda n: 1000 - n)  # blob-0 is the oldest
    blobs.read("blob-0")  # ... but used just now

    for number in range(5, 12):
        blobs.create(f"blob-{number}", bytes(100))
        aged(blobs, f"blob-{number}", 500 - number)

    assert blobs.total_bytes() <= 1000
    assert blobs.read("blob-0") is not None
    assert blobs.read("blob-1") is None
    assert blobs.read("blob-11") is not None


def test_eviction_goes_below_the_cap_so_that_scans_stay_rare(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path, max_bytes=1000)
    fill(blobs, 10, 100, age=lambda n: 1000 - n)

    blobs.create("one more", bytes(100))

    assert blobs.total_bytes() <= 900
    assert blobs.read("one more") is not None


def test_the_cap_counts_what_was_there_before_the_store_object(tmp_path: Path) -> None:
    fill(FileBlobStore(tmp_path), 10, 100, age=lambda n: 1000 - n)

    FileBlobStore(tmp_path, max_bytes=500).create("new", bytes(100))

    assert FileBlobStore(tmp_path).total_bytes() <= 500


def test_a_blob_larger_than_the_cap_is_still_stored(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path, max_bytes=100)
    blobs.create("small", bytes(50))

    blobs.create("large", bytes(500))

    assert blobs.read("large") == bytes(500)
    assert blobs.read("small") is None


def test_a_crash_leftover_temporary_file_is_cleaned_up_by_the_next_scan(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path, max_bytes=10_000)
    blobs.create("k", b"data")
    folder = blobs.path("k").parent
    leftover, fresh = folder / ".crashed.tmp", folder / ".being-written.tmp"
    leftover.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(leftover, (two_hours_ago, two_hours_ago))

    assert blobs.total_bytes() == 4

    assert not leftover.exists()
    assert fresh.exists()


def test_a_cap_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        FileBlobStore(tmp_path, max_bytes=0)
