"""In-memory blobs (:class:`pacsync.imaging.ports.BlobStore`), for unit tests."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

__all__ = ["MemoryBlobStore"]


class MemoryBlobStore:
    """Blobs in a dict, ``blobs``, for tests to assert on; every operation holds one lock.

    Same contract as the file store: a missing key reads as None, a range past the
    end is cut short, removing a missing key does nothing."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def create(self, key: str, data: bytes) -> None:
        with self._lock:
            self.blobs[key] = bytes(data)

    def read(self, key: str) -> bytes | None:
        with self._lock:
            return self.blobs.get(key)

    def read_range(self, key: str, start: int, end: int) -> bytes | None:
        if start < 0 or end < start:
            raise ValueError(f"bad range [{start}, {end})")
        with self._lock:
            blob = self.blobs.get(key)
        return None if blob is None else blob[start:end]

    def remove(self, key: str) -> None:
        with self._lock:
            self.blobs.pop(key, None)


if TYPE_CHECKING:
    from pacsync.imaging.ports import BlobStore

    def _conforms() -> BlobStore:  # mypy proves the fake matches its port
        return MemoryBlobStore()
