"""Scanning a legacy PACS store (a Firebird database listing JPEG 2000 image files)
into the index.

The database says what each image is; the image root holds the files.  An image
is re-indexed when its file's stat or its database row changed (the row's
fingerprint); images the database no longer lists are deleted from the index.
A database that cannot be reached, or an image root that is gone, marks the
archive offline and keeps every entry."""

from __future__ import annotations

from collections.abc import Callable

from pacsync.domain.imaging import fingerprint
from pacsync.errors import ArchiveOffline, TransientError
from pacsync.imaging.ports import (
    ArchiveIndex,
    FileStat,
    IndexChanges,
    LegacyCatalog,
    Parsed,
)
from pacsync.imaging.scan import BATCH, ScanCounts, ScanResult

Stat = Callable[[str, str], FileStat | None]  # (root, relative path) → stat, None: missing


class LegacyScan:
    def __init__(
        self,
        archive: str,
        image_root: str,
        *,
        catalog: LegacyCatalog,
        index: ArchiveIndex,
        stat: Stat,
        root_online: Callable[[str], str | None],
        progress: Callable[[ScanCounts, int], None] = lambda counts, todo: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.archive, self.root = archive, image_root
        self.catalog, self.index, self.stat = catalog, index, stat
        self.root_online, self.progress, self.should_stop = root_online, progress, should_stop
        self.counts = ScanCounts()

    def run(self, *, full: bool = False) -> ScanResult:
        try:
            status, reason = self._scan(full)
        except (ArchiveOffline, TransientError) as error:
            self.index.set_status(self.archive, "offline", error.message, self.counts.as_dict())
            return ScanResult(self.archive, "offline", self.counts, error.message)
        finally:
            self.catalog.close()
        self.index.set_status(self.archive, "online", reason, self.counts.as_dict())
        return ScanResult(self.archive, status, self.counts, reason)

    def _scan(self, full: bool) -> tuple[str, str | None]:
        c = self.counts
        trouble = self.root_online(self.root)
        if trouble is not None:
            raise ArchiveOffline(trouble)
        known = self.index.known_files(self.archive)
        seen: set[str] = set()
        changes = IndexChanges()
        for image in self.catalog.images():
            path = image.relative_path
            if path in seen:
                continue
            seen.add(path)
            c.seen += 1
            stat = self.stat(self.root, path)
            digest = fingerprint(image.header)
            old = known.get(path)
            if stat is None:
                parsed = Parsed(FileStat(path, 0, 0, 0), None, "unreadable",
                                "the database lists this image but its file is missing",
                                digest)  # fmt: skip
            else:
                parsed = Parsed(stat, image.header, content_hash=digest)
            if old is None:
                c.new += 1
            elif not full and old.content_hash == digest and old.stat.same_as(parsed.stat):
                c.unchanged += 1
                continue
            else:
                c.changed += 1
            changes.parsed.append(parsed)
            if len(changes) >= BATCH:
                self._commit(changes)
                changes = IndexChanges()
                if self.should_stop():
                    return "interrupted", "stopped on request"
        vanished = [k for path, k in known.items() if path not in seen]
        if vanished:
            trouble = self.root_online(self.root)
            if trouble is not None:
                raise ArchiveOffline(trouble)
            changes.deleted = vanished
            c.deleted = len(vanished)
        self._commit(changes)
        return "online", None

    def _commit(self, changes: IndexChanges) -> None:
        c = self.counts
        c.tally(changes.parsed)
        if len(changes):
            c.conflicts += self.index.apply(self.archive, changes)
        self.progress(c, c.seen)
