"""A :class:`pacsync.imaging.ports.BlobStore` on a local filesystem (rendered frames,
thumbnails).

Layout, as in Orthanc's storage area: the SHA-256 of the key names the file, under
two levels of fan-out folders taken from its first hex digits
(``root/3f/a2/3fa2...``), so no folder holds more than a few thousand files and any
key is a safe file name.

A write goes to a temporary file in the target folder, is flushed to disk and then
renamed over the target (``os.replace``): a reader sees the old bytes or the new
ones, never a part, and concurrent writers of one key (threads or processes) leave
one of their blobs whole.  Temporary files left by a crash are removed by the next
eviction scan once they are an hour old.

With ``max_bytes``, the least recently used blobs are removed when the store grows
past it, down to 90 % of it so that scans stay rare.  "Used" is the file's
modification time, which a read refreshes (at most once a minute per blob, so hot
blobs cost no metadata write per read).  Sizes are counted per process and corrected
by a scan of the folders whenever the count passes the cap or a tenth of the cap has
been written since the last scan; several processes sharing a root may overshoot
the cap by what they write between scans.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

__all__ = ["FileBlobStore"]

_TOUCH_AFTER = 60.0  # seconds between two refreshes of a blob's last use
_STALE_TEMPORARY = 3600.0  # seconds after which a temporary file is a crash's leftover
_TEMPORARY_SUFFIX = ".tmp"


class FileBlobStore:
    """Blobs as files under ``root``, at most ``max_bytes`` in all when given."""

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._counted: int | None = None  # bytes under root as this process knows it
        self._written_since_scan = 0

    def path(self, key: str) -> Path:
        """Where the blob of ``key`` lives (whether or not it exists)."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.root / digest[:2] / digest[2:4] / digest

    def create(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any blob it had, atomically."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=_TEMPORARY_SUFFIX
        )
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        if self.max_bytes is not None:
            self._count(len(data), keep=target)

    def read(self, key: str) -> bytes | None:
        """The blob of ``key``; None when there is none."""
        try:
            with self.path(key).open("rb") as blob:
                _touch(blob.fileno())
                return blob.read()
        except FileNotFoundError:
            return None

    def read_range(self, key: str, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` of the blob of ``key`` (fewer past its end); None when
        there is none.  ValueError for a negative start or an end before the start."""
        _check_range(start, end)
        try:
            with self.path(key).open("rb") as blob:
                _touch(blob.fileno())
                blob.seek(start)
                return blob.read(end - start)
        except FileNotFoundError:
            return None

    def remove(self, key: str) -> None:
        """Remove the blob of ``key``; nothing happens when there is none."""
        self.path(key).unlink(missing_ok=True)

    def total_bytes(self) -> int:
        """The size of every blob under ``root``, from a scan of the folders."""
        return sum(size for _, size, _ in self._blobs())

    def _count(self, written: int, *, keep: Path) -> None:
        assert self.max_bytes is not None
        with self._lock:
            self._written_since_scan += written
            if self._counted is not None:
                self._counted += written
            if (
                self._counted is not None
                and self._counted <= self.max_bytes
                and self._written_since_scan * 10 < self.max_bytes
            ):
                return
            self._counted = self._evict(self.max_bytes, keep)
            self._written_since_scan = 0

    def _evict(self, max_bytes: int, keep: Path) -> int:
        """Remove the least recently used blobs when over ``max_bytes``; the bytes left."""
        blobs = sorted(self._blobs())
        total = sum(size for _, size, _ in blobs)
        if total <= max_bytes:
            return total
        goal = max_bytes * 9 // 10
        for _, size, path in blobs:
            if total <= goal:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)  # another process may have evicted it first
            total -= size
        return total

    def _blobs(self) -> Iterator[tuple[float, int, Path]]:
        """(last use, size, path) of every blob; removes stale temporary files."""
        now = time.time()
        for first in _folders(self.root):
            for second in _folders(first):
                for entry in _entries(second):
                    try:
                        stat = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if entry.name.endswith(_TEMPORARY_SUFFIX):
                        if now - stat.st_mtime > _STALE_TEMPORARY:
                            Path(entry.path).unlink(missing_ok=True)
                        continue
                    yield stat.st_mtime, stat.st_size, Path(entry.path)


def _folders(parent: Path | str) -> list[str]:
    return [entry.path for entry in _entries(parent) if entry.is_dir(follow_symlinks=False)]


def _entries(folder: Path | str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as listing:
            return list(listing)
    except FileNotFoundError:
        return []


def _touch(fd: int) -> None:
    """Mark the open blob as used now, unless it was marked within the last minute."""
    now = time.time()
    try:
        if now - os.fstat(fd).st_mtime > _TOUCH_AFTER:
            os.utime(fd, (now, now))
    except (OSError, NotImplementedError):
        pass  # a blob another user owns, or no utime on descriptors: it just ages


def _check_range(start: int, end: int) -> None:
    if start < 0 or end < start:
        raise ValueError(f"bad range [{start}, {end})")


if TYPE_CHECKING:
    from pacsync.imaging.ports import BlobStore

    def _conforms(root: Path) -> BlobStore:  # mypy proves the store matches its port
        return FileBlobStore(root)
