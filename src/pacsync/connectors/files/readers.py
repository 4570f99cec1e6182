"""Reading dropped files as records: the format's reader chosen, what they share.

A reader is opened on a binary stream and the entity's :class:`DropSpec`; it has
the ``columns`` its records' values follow and yields :class:`FileRecord` items,
one per record, malformed ones included (with the reason), so a bad record never
stops the file.  What makes the rest of a file unreadable (a wrong CSV header,
JSON or XML that stops being well-formed) raises :class:`DropFileRefused`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import BinaryIO, Protocol

from pacsync.connectors.files.csv_reader import CsvRecords
from pacsync.connectors.files.json_reader import JsonArrayRecords, NdjsonRecords
from pacsync.connectors.files.xml_reader import XmlRecords
from pacsync.domain.drop_spec import DropSpec
from pacsync.domain.drops import FileRecord


class RecordReader(Protocol):
    @property
    def columns(self) -> list[str]: ...

    def __iter__(self) -> Iterator[FileRecord]: ...


def open_records(stream: BinaryIO, spec: DropSpec, needed: Sequence[str]) -> RecordReader:
    """The reader of ``spec.format`` on ``stream``; ``needed`` are the columns the mapping
    reads (expected when ``spec.columns`` declares none)."""
    columns = list(spec.columns) or list(needed)
    if spec.format == "csv":
        return CsvRecords(stream, spec, needed)
    if spec.format == "ndjson":
        return NdjsonRecords(stream, spec, columns)
    if spec.format == "json":
        return JsonArrayRecords(stream, spec, columns)
    return XmlRecords(stream, spec, columns)
