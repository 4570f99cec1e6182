"""The narrow interfaces the imaging use cases talk to (connectors implement them)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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


@dataclass(frozen=True, slots=True)
class FileStat:
    """A file of an archive as a directory walk sees it (path relative to the root)."""

    path: str
    size: int
    mtime_ns: int
    inode: int

    def same_as(self, other: FileStat) -> bool:
        return (self.size, self.mtime_ns, self.inode) == (other.size, other.mtime_ns, other.inode)


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """A folder the walk could not read: what is indexed under it is kept as it is."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class KnownFile:
    """A file the index holds."""

    id: int
    stat: FileStat
    state: str  # indexed, invalid, unreadable
    content_hash: str | None
    sop_instance_uid: str | None


@dataclass(frozen=True, slots=True)
class Parsed:
    """A file read for the index: its header, or why it has none (``state`` invalid:
    not DICOM, truncated, corrupt; unreadable: the file could not be read)."""

    stat: FileStat
    header: InstanceHeader | None
    state: str = "indexed"
    reason: str | None = None
    content_hash: str | None = None


class TreeWalker(Protocol):
    """Lists the files under an archive root, never reading their content."""

    def __call__(self, root: str) -> Iterator[FileStat | WalkProblem]:
        """Every file, as it is found.  :class:`pacsync.errors.ArchiveOffline` when the
        root itself is missing or unreadable, at the start or mid-walk."""
        ...


class ParsePool(Protocol):
    """Reads the headers of many files in parallel (in no particular order)."""

    def parse(self, root: str, files: Sequence[FileStat]) -> Iterator[Parsed]: ...


class ContentHasher(Protocol):
    def __call__(self, root: str, path: str) -> str: ...


@dataclass(slots=True)
class IndexChanges:
    """What one batch of a scan changes in the index (applied in one transaction)."""

    parsed: list[Parsed] = field(default_factory=list)
    moved: list[tuple[KnownFile, FileStat]] = field(default_factory=list)
    deleted: list[KnownFile] = field(default_factory=list)
    touched: list[KnownFile] = field(default_factory=list)  # unchanged content, new stat

    def __len__(self) -> int:
        return len(self.parsed) + len(self.moved) + len(self.deleted) + len(self.touched)


class ArchiveIndex(Protocol):
    """The index of patients, studies, series and instances of every archive."""

    def known_files(self, archive: str) -> dict[str, KnownFile]: ...

    def held_back(self, archive: str) -> list[KnownFile]:
        """Unchanged files whose instance should be decided again: held back behind a
        study that has nothing else left, or duplicates of an instance no file holds."""
        ...

    def apply(self, archive: str, changes: IndexChanges) -> int:
        """Apply one batch; the number of identity conflicts it found."""
        ...

    def set_status(
        self, archive: str, status: str, reason: str | None, scan: dict[str, Any] | None = None
    ) -> None: ...


class Renderer(Protocol):
    """Renders one frame of a DICOM Part 10 file as an 8-bit PNG or JPEG.

    ``frame`` counts from 1; ``size`` bounds the longer side in pixels (never upscaled,
    ``None`` for full resolution); ``window`` is (center, width) in modality units.
    NotFound for a frame out of range or no pixel data, UnsupportedFeature for pixel
    data it cannot decode, InvalidRequest for bad parameters."""

    def __call__(
        self,
        data: bytes | Path,
        *,
        frame: int = 1,
        size: int | None = None,
        media_type: str = "image/png",
        window: tuple[float, float] | None = None,
        quality: int = 90,
    ) -> bytes: ...
