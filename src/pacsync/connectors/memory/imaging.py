"""Fakes of the imaging ports: a parse pool that knows each file's header by path,
and a legacy catalog listing images given to it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pacsync.domain.imaging import InstanceHeader
from pacsync.imaging.ports import FileStat, LegacyImage, Parsed


@dataclass
class MemoryParsePool:
    """``headers`` by relative path; a path it does not know parses as invalid.  Every
    path it was asked to parse is kept in ``parsed`` (a scan of an unchanged tree
    must leave it empty)."""

    headers: dict[str, InstanceHeader] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)
    parsed: list[str] = field(default_factory=list)

    def parse(self, root: str, files: Sequence[FileStat]) -> Iterator[Parsed]:
        for stat in files:
            self.parsed.append(stat.path)
            if stat.path in self.unreadable:
                yield Parsed(stat, None, "unreadable", "Permission denied")
            elif stat.path in self.headers:
                yield Parsed(stat, self.headers[stat.path])
            else:
                yield Parsed(stat, None, "invalid", "not DICOM: no DICM prefix at byte 128")


@dataclass
class MemoryCatalog:
    """A legacy database listing ``images``; ``down`` makes it unreachable."""

    images_listed: list[LegacyImage] = field(default_factory=list)
    down: Exception | None = None
    closed: bool = False

    def images(self) -> Iterator[LegacyImage]:
        if self.down is not None:
            raise self.down
        yield from self.images_listed

    def close(self) -> None:
        self.closed = True
