"""CSV files: the header checked against the declared columns, then one record a row.

Quoted fields may hold the delimiter, doubled quotes and line breaks (RFC 4180);
a UTF-8 byte order mark is skipped.  A row with another number of fields than the
header, bytes that are not valid in the declared encoding or broken quoting is a
malformed record with its line; blank lines are skipped.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from pacsync.connectors.files.record_values import text_encoding, undecodable
from pacsync.domain.drop_spec import DropSpec
from pacsync.domain.drops import FileRecord, WrongColumns, check_header
from pacsync.errors import DropFileRefused

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a long free-text note is still a field


class _Lines:
    """The text lines a CSV row was parsed from, kept until the row is taken."""

    def __init__(self, text: io.TextIOBase) -> None:
        self.text = text
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.text.readline()
        if not line:
            raise StopIteration
        self.taken.append(line)
        return line

    def take(self) -> str:
        raw = "".join(self.taken)
        self.taken.clear()
        return raw


class CsvRecords:
    """The records of one CSV file (the header is read and checked when opened)."""

    def __init__(self, stream: BinaryIO, spec: DropSpec, needed: Sequence[str]) -> None:
        self.spec = spec
        self.encoding = spec.encoding
        text = io.TextIOWrapper(
            stream, encoding=text_encoding(spec.encoding), errors="surrogateescape", newline=""
        )
        self.lines = _Lines(text)
        self.rows = csv.reader(
            self.lines, delimiter=spec.delimiter, quotechar=spec.quote, strict=True
        )
        self.nulls = frozenset(spec.nulls)
        self.last_line = 0
        self.columns: list[str] = list(spec.columns)
        if spec.header:
            self.columns = self._header(needed)

    def _header(self, needed: Sequence[str]) -> list[str]:
        for fields, _line, raw in self._rows():
            problem = undecodable(raw, self.encoding)
            if fields is None or problem is not None:
                raise DropFileRefused(f"the header cannot be read: {problem or 'broken quoting'}")
            found = [f.strip() for f in fields]
            check = check_header(found, self.spec.columns, needed)
            if not check.ok:
                raise WrongColumns(
                    f"wrong columns in the header: {check.reason()}",
                    missing=check.missing + check.duplicated,
                    unexpected=check.unexpected,
                )
            return found
        raise DropFileRefused("the file is empty: no header")

    def _rows(self) -> Iterator[tuple[list[str] | None, int, str]]:
        """(fields or None when the quoting is broken, first line, raw text), blank rows
        skipped."""
        while True:
            first = self.last_line + 1
            try:
                fields: list[str] | None = next(self.rows)
            except StopIteration:
                return
            except csv.Error:
                fields = None
            self.last_line = self.rows.line_num
            raw = self.lines.take()
            if fields is not None and not any(f.strip() for f in fields) and len(fields) <= 1:
                continue
            yield fields, first, raw

    def __iter__(self) -> Iterator[FileRecord]:
        width = len(self.columns)
        nulls = self.nulls
        for index, (fields, line, raw) in enumerate(self._rows()):
            problem = undecodable(raw, self.encoding)
            if fields is None:
                problem = problem or "broken quoting: a quote inside a field that is not doubled"
            elif problem is None and len(fields) != width:
                problem = f"{len(fields)} fields where the header has {width}"
            if problem is not None:
                yield FileRecord(index, line, None, raw, problem)
            else:
                assert fields is not None
                values = tuple(None if f in nulls else f for f in fields)
                yield FileRecord(index, line, values, raw)
