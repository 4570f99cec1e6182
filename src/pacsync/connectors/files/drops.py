"""Drop folders on a local disk or a mounted share (a :class:`pacsync.ports.DropFolder`).

Each drop entity has a folder (``drop``, under the folder of the pipeline's
``file:`` source connection) and a file name ``pattern``.  A file is read only
once it is complete, by one of two rules the entity declares:

- ``ready: quiet`` (the default): not modified for ``quiet_s`` seconds.  Every
  write moves a file's modification time, so an export still being written is
  left alone; a writer that stalls longer than ``quiet_s`` should use a marker.
- ``ready: marker``: a marker file beside it (``NAME.done`` by default) says it
  is complete; the marker is removed with the file.

Writers that copy under a temporary name and rename when done are always safe:
hidden files (``.name``) and names ending in ``.tmp``, ``.part``, ``.partial``,
``.filepart`` or ``~`` are never read, nor is anything not matching ``pattern``.

A loaded file is moved to ``archive/`` and a refused one to ``error/`` (both in
the drop folder unless declared elsewhere), renamed with the UTC time it was
moved (``patients_1.20261123T201500Z.csv``), with its report beside it as
``<new name>.report.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from pacsync.connectors.files.readers import RecordReader, open_records
from pacsync.domain.drop_spec import DropSpec
from pacsync.domain.drops import FileIdentity, FileRecord, FileReport
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import DropFolderUnavailable

TEMPORARY = (".tmp", ".part", ".partial", ".filepart", "~")


class FolderDrops:
    """The drop folders of one pipeline's entities."""

    def __init__(self, spec: PipelineSpec, *, clock: Callable[[], float] = time.time) -> None:
        root = spec.connections[spec.source.connection].folder
        if root is None:
            raise ValueError(f"pipeline '{spec.name}' does not read a folder")
        self.root = Path(root)
        self.drops: dict[str, DropSpec] = {n: e.drop for n, e in spec.entities.items() if e.drop}
        self.clock = clock

    def folder(self, entity: str) -> Path:
        return self.root / self.drops[entity].drop

    def check(self) -> None:
        """Every entity's drop folder can be listed."""
        for entity in self.drops:
            with _translated(self.folder(entity), entity), os.scandir(self.folder(entity)):
                pass

    def close(self) -> None:
        return None

    # -- DropFolder port ------------------------------------------------------------------------

    def ready(self, entity: str) -> list[str]:
        spec, folder = self.drops[entity], self.folder(entity)
        now = self.clock()
        found: list[str] = []
        with _translated(folder, entity):
            with os.scandir(folder) as entries:
                files = {e.name: e for e in entries if e.is_file()}
            for name, entry in files.items():
                if not _candidate(name, spec):
                    continue
                if spec.ready == "marker":
                    if name + spec.marker in files:
                        found.append(name)
                elif entry.stat().st_mtime <= now - spec.quiet_s:
                    found.append(name)
        return sorted(found)

    def identify(self, entity: str, name: str) -> FileIdentity | None:
        path = self.folder(entity) / name
        try:
            with path.open("rb") as stream:
                stat = os.fstat(stream.fileno())
                digest = hashlib.file_digest(stream, "sha256").hexdigest()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _unavailable(exc, path, entity) from exc
        return FileIdentity(name, stat.st_size, stat.st_mtime_ns, digest)

    @contextlib.contextmanager
    def records(self, entity: str, name: str, needed: Sequence[str]) -> Iterator[_Guarded]:
        path = self.folder(entity) / name
        with _translated(path, entity), path.open("rb") as stream:
            yield _Guarded(open_records(stream, self.drops[entity], needed), path, entity)

    def finish(self, entity: str, name: str, report: FileReport) -> str:
        spec, folder = self.drops[entity], self.folder(entity)
        where = folder / (spec.archive if report.outcome == "archived" else spec.error)
        stamp = dt.datetime.fromtimestamp(self.clock(), dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        source = folder / name
        with _translated(where, entity):
            where.mkdir(parents=True, exist_ok=True)
            target = _free_name(where, source, stamp)
            notes = target.with_name(target.name + ".report.json")
            partial = notes.with_name(notes.name + ".tmp")
            partial.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
            os.replace(partial, notes)
            if source.exists():
                shutil.move(source, target)
            marker = folder / (name + spec.marker)
            if spec.ready == "marker":
                marker.unlink(missing_ok=True)
        return str(target)


class _Guarded:
    """A file's records with read errors of the disk or share translated."""

    def __init__(self, reader: RecordReader, path: Path, entity: str) -> None:
        self.reader, self.path, self.entity = reader, path, entity

    @property
    def columns(self) -> list[str]:
        return self.reader.columns

    def __iter__(self) -> Iterator[FileRecord]:
        with _translated(self.path, self.entity):
            yield from self.reader


def _candidate(name: str, spec: DropSpec) -> bool:
    if name.startswith(".") or name.endswith(TEMPORARY) or name.endswith(spec.marker):
        return False
    return fnmatch.fnmatchcase(name, spec.pattern)


def _free_name(folder: Path, source: Path, stamp: str) -> Path:
    suffix = "".join(source.suffixes[-1:])
    stem = source.name[: len(source.name) - len(suffix)]
    target = folder / f"{stem}.{stamp}{suffix}"
    count = 1
    while target.exists():
        count += 1
        target = folder / f"{stem}.{stamp}-{count}{suffix}"
    return target


@contextlib.contextmanager
def _translated(path: Path, entity: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _unavailable(exc, path, entity) from exc


def _unavailable(exc: OSError, path: Path, entity: str) -> DropFolderUnavailable:
    where = exc.filename or path
    if isinstance(exc, FileNotFoundError):
        return DropFolderUnavailable(f"{where} not found (drop of entity '{entity}')")
    return DropFolderUnavailable(
        f"cannot read {where} (drop of entity '{entity}'): {exc.strerror or exc}"
    )
