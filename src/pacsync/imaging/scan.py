"""Scanning a DICOM archive root into the index, incrementally.

A walk lists every file with its (size, mtime, inode) and compares it with the
index: unchanged files are not opened; new and changed files are parsed (in
parallel, by the parse pool); a vanished file whose stat reappears at another path
is a move (no parse); what is left vanished is deleted from the index.  A content
hash is computed only where the stat is ambiguous: the same path, size and mtime
on another inode (a file replaced by a copy).

Nothing is dropped when the root goes away: a root that is missing, unreadable,
or empty while the index holds files for it (an unmounted share) is marked
offline and its entries are kept; a folder that cannot be read keeps the entries
under it; a file that cannot be parsed is recorded with its reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from pacsync.errors import ArchiveOffline
from pacsync.imaging.ports import (
    ArchiveIndex,
    ContentHasher,
    FileStat,
    IndexChanges,
    KnownFile,
    Parsed,
    ParsePool,
    TreeWalker,
    WalkProblem,
)

BATCH = 500  # files per index transaction


@dataclass(slots=True)
class ScanCounts:
    seen: int = 0
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    moved: int = 0
    deleted: int = 0
    indexed: int = 0
    invalid: int = 0
    unreadable: int = 0
    hashed: int = 0
    rechecked: int = 0  # unchanged files read again: released from quarantine or duplicates
    conflicts: int = 0
    problems: list[str] = field(default_factory=list)  # folders that could not be read

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def tally(self, parsed: list[Parsed]) -> None:
        for one in parsed:
            if one.state in ("indexed", "duplicate"):
                self.indexed += 1
            elif one.state == "invalid":
                self.invalid += 1
            else:
                self.unreadable += 1


@dataclass(slots=True)
class ScanResult:
    archive: str
    status: str  # online, offline, interrupted
    counts: ScanCounts
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "status": self.status,
            "reason": self.reason,
            **self.counts.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class _Plan:
    parse: list[FileStat]
    ambiguous: list[tuple[KnownFile, FileStat]]
    moved: list[tuple[KnownFile, FileStat]]
    vanished: list[KnownFile]


class ArchiveScan:
    """One scan of one root (``full`` re-reads every file)."""

    def __init__(
        self,
        archive: str,
        root: str,
        *,
        index: ArchiveIndex,
        walker: TreeWalker,
        pool: ParsePool,
        hasher: ContentHasher,
        progress: Callable[[ScanCounts, int], None] = lambda counts, todo: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.archive, self.root = archive, root
        self.index, self.walker, self.pool, self.hasher = index, walker, pool, hasher
        self.progress, self.should_stop = progress, should_stop
        self.counts = ScanCounts()
        self._hashes: dict[str, str] = {}  # content hashes computed for ambiguous files

    def run(self, *, full: bool = False) -> ScanResult:
        try:
            known = self.index.known_files(self.archive)
            plan = self._plan(known, full)
            self._apply_plan(plan)
        except ArchiveOffline as offline:
            self.index.set_status(self.archive, "offline", offline.message, self.counts.as_dict())
            return ScanResult(self.archive, "offline", self.counts, offline.message)
        except _Stopped:
            self.index.set_status(self.archive, "online", "scan interrupted", self.counts.as_dict())
            return ScanResult(self.archive, "interrupted", self.counts, "stopped on request")
        self.index.set_status(self.archive, "online", None, self.counts.as_dict())
        return ScanResult(self.archive, "online", self.counts)

    # -- what changed ---------------------------------------------------------------------------

    def _plan(self, known: dict[str, KnownFile], full: bool) -> _Plan:
        c = self.counts
        seen: set[str] = set()
        fresh: list[FileStat] = []
        parse: list[FileStat] = []
        ambiguous: list[tuple[KnownFile, FileStat]] = []
        unlisted: list[str] = []  # folders not fully listed: what is under them is kept
        for item in self.walker(self.root):
            if isinstance(item, WalkProblem):
                c.problems.append(f"{item.path or '.'}: {item.reason}")
                unlisted.append(f"{item.path.rstrip('/')}/" if item.path else "")
                continue
            c.seen += 1
            seen.add(item.path)
            old = known.get(item.path)
            if old is None:
                fresh.append(item)
            elif not full and old.stat.same_as(item):
                c.unchanged += 1
            elif (
                not full
                and old.state == "indexed"
                and old.stat.size == item.size
                and (old.stat.mtime_ns == item.mtime_ns)
            ):
                ambiguous.append((old, item))  # replaced by a copy, or only re-linked?
            else:
                c.changed += 1
                parse.append(item)
        if not seen and known:
            raise ArchiveOffline(
                f"archive root {self.root} is empty but the index holds {len(known):,} files "
                "for it: is the share mounted?"
            )
        blocked = tuple(unlisted)
        vanished = [
            k for path, k in known.items() if path not in seen and not path.startswith(blocked)
        ]
        moved, rest = _moves(fresh, vanished)
        c.moved, c.new = len(moved), len(rest)
        gone = {k.id for k, _ in moved}
        return _Plan(
            parse=rest + parse,
            ambiguous=ambiguous,
            moved=moved,
            vanished=[k for k in vanished if k.id not in gone],
        )

    # -- applying it ----------------------------------------------------------------------------

    def _apply_plan(self, plan: _Plan) -> None:
        c = self.counts
        changes = IndexChanges(moved=list(plan.moved))
        todo = len(plan.parse) + len(plan.ambiguous)
        for old, stat in plan.ambiguous:
            digest = self.hasher(self.root, stat.path)
            c.hashed += 1
            if old.content_hash is not None and digest == old.content_hash:
                c.unchanged += 1
                changes.touched.append(KnownFile(old.id, stat, old.state, digest,
                                                 old.sop_instance_uid))  # fmt: skip
            else:
                c.changed += 1
                plan.parse.append(stat)
                self._hashes[stat.path] = digest
        for parsed in self._parsed(plan.parse):
            changes.parsed.append(parsed)
            if len(changes) >= BATCH:
                self._commit(changes, todo)
                changes = IndexChanges()
        if plan.vanished:
            self._check_online()
            changes.deleted = plan.vanished
            c.deleted = len(plan.vanished)
        self._commit(changes, todo)
        again = [k.stat for k in self.index.held_back(self.archive)]
        if again:  # what this scan's changes released: read once more, in one batch
            c.rechecked = len(again)
            self._commit(IndexChanges(parsed=list(self._parsed(again))), todo)

    def _parsed(self, files: list[FileStat]) -> Iterator[Parsed]:
        hashes = self._hashes
        for parsed in self.pool.parse(self.root, files):
            if parsed.state == "unreadable":
                self._check_online()  # a vanished root is not a folder of unreadable files
            digest = hashes.get(parsed.stat.path)
            yield parsed if digest is None else dataclasses.replace(parsed, content_hash=digest)

    def _check_online(self) -> None:
        for item in self.walker(self.root):  # the walk raises ArchiveOffline for a lost root
            if isinstance(item, FileStat):
                return
        raise ArchiveOffline(f"archive root {self.root} became empty during the scan")

    def _commit(self, changes: IndexChanges, todo: int) -> None:
        c = self.counts
        c.tally(changes.parsed)
        if len(changes):
            c.conflicts += self.index.apply(self.archive, changes)
        self.progress(c, todo)
        if self.should_stop():
            raise _Stopped


class _Stopped(Exception):
    """The scan was asked to stop; what was committed stays."""


def _moves(
    fresh: list[FileStat], vanished: list[KnownFile]
) -> tuple[list[tuple[KnownFile, FileStat]], list[FileStat]]:
    """New files that are vanished ones under another path (same size, mtime and inode)."""
    by_stat: dict[tuple[int, int, int], KnownFile] = {
        (k.stat.size, k.stat.mtime_ns, k.stat.inode): k for k in vanished
    }
    moved: list[tuple[KnownFile, FileStat]] = []
    rest: list[FileStat] = []
    for stat in fresh:
        old = by_stat.pop((stat.size, stat.mtime_ns, stat.inode), None)
        if old is not None:
            moved.append((old, stat))
        else:
            rest.append(stat)
    return moved, rest
