"""The narrow interfaces the imaging use cases talk to (connectors implement them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pacsync.domain.imaging import InstanceHeader


class HeaderReader(Protocol):
    """Reads the indexed attributes of one DICOM file, never its pixel data."""

    def __call__(self, path: Path) -> InstanceHeader:
        """The header; :class:`pacsync.errors.InvalidDicom` for a file that is not DICOM,
        is truncated or corrupt; ``OSError`` when it cannot be read at all."""
        ...


@dataclass(frozen=True, slots=True)
class LegacyImage:
    """One image of a legacy store: its attributes from the legacy database and the
    image file (relative to the archive's image root) that holds its pixels."""

    header: InstanceHeader
    relative_path: str


class LegacyCatalog(Protocol):
    """A legacy PACS database (Firebird) listing its images."""

    def images(self) -> Iterator[LegacyImage]:
        """Every image the database lists, streamed.  A ConnectionTimeout when the
        server cannot be reached; a SourceError when a mapped table or column is wrong."""
        ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    """Bytes by key (rendered frames, thumbnails): create, read, read-range, remove."""

    def create(self, key: str, data: bytes) -> None: ...

    def read(self, key: str) -> bytes | None: ...

    def read_range(self, key: str, start: int, end: int) -> bytes | None: ...

    def remove(self, key: str) -> None: ...
