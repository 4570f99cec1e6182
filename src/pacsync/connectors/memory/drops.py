"""An in-memory :class:`pacsync.ports.DropFolder`: files as bytes, read by the real readers."""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pacsync.connectors.files.readers import RecordReader, open_records
from pacsync.domain.drop_spec import DropSpec
from pacsync.domain.drops import FileIdentity, FileReport
from pacsync.domain.spec import PipelineSpec


@dataclass(frozen=True, slots=True)
class Finished:
    """A file taken out of its drop: its bytes and its report."""

    data: bytes
    report: FileReport


class MemoryDrops:
    """Drop folders in dictionaries.

    ``files[entity][name]`` holds a waiting file (every one is complete);
    ``archived`` and ``refused`` what :meth:`finish` took out, by entity and name.
    ``mtimes`` gives a file a modification time (0 otherwise).
    """

    def __init__(self, spec: PipelineSpec) -> None:
        self.drops: dict[str, DropSpec] = {n: e.drop for n, e in spec.entities.items() if e.drop}
        self.files: dict[str, dict[str, bytes]] = {name: {} for name in self.drops}
        self.mtimes: dict[str, int] = {}
        self.archived: dict[str, dict[str, Finished]] = {name: {} for name in self.drops}
        self.refused: dict[str, dict[str, Finished]] = {name: {} for name in self.drops}

    def drop(self, entity: str, name: str, data: bytes, mtime_ns: int = 0) -> None:
        self.files[entity][name] = data
        self.mtimes[name] = mtime_ns

    def ready(self, entity: str) -> list[str]:
        return sorted(self.files[entity])

    def identify(self, entity: str, name: str) -> FileIdentity | None:
        data = self.files[entity].get(name)
        if data is None:
            return None
        digest = hashlib.sha256(data).hexdigest()
        return FileIdentity(name, len(data), self.mtimes.get(name, 0), digest)

    @contextlib.contextmanager
    def records(self, entity: str, name: str, needed: Sequence[str]) -> Iterator[RecordReader]:
        data = self.files[entity][name]
        yield open_records(io.BytesIO(data), self.drops[entity], needed)

    def finish(self, entity: str, name: str, report: FileReport) -> str:
        data = self.files[entity].pop(name)
        kept = self.archived if report.outcome == "archived" else self.refused
        kept[entity][name] = Finished(data, FileReport.from_dict(report.as_dict()))
        return f"{'archive' if report.outcome == 'archived' else 'error'}/{name}"
