"""JSON files: an array of objects (streamed, or found by ``record_path`` in a
document), or NDJSON, one object a line.

A record's columns are its keys (dotted paths reach into nested objects; nested
arrays and objects are kept as JSON text).  In NDJSON a line that is not a JSON
object is a malformed record and the next line is read; in an array, an element
that is not an object is, but JSON that stops being well-formed ends the file.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from pacsync.connectors.files.record_values import lookup, nulled, text_encoding, undecodable
from pacsync.domain.drop_spec import DropSpec
from pacsync.domain.drops import FileRecord
from pacsync.errors import DropFileRefused

_CHUNK = 1 << 16
_SPACE = " \t\r\n"


class _Values:
    def __init__(self, spec: DropSpec, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self.nulls = frozenset(spec.nulls)
        self.encoding = spec.encoding

    def record(self, index: int, line: int, value: Any, raw: str) -> FileRecord:
        if not isinstance(value, dict):
            kind = type(value).__name__ if value is not None else "null"
            return FileRecord(index, line, None, raw, f"a JSON {kind}, not an object")
        nulls = self.nulls
        values = tuple(nulled(lookup(value, c), nulls) for c in self.columns)
        return FileRecord(index, line, values, raw)


class NdjsonRecords(_Values):
    """One JSON object a line; blank lines are skipped."""

    def __init__(self, stream: BinaryIO, spec: DropSpec, columns: Sequence[str]) -> None:
        super().__init__(spec, columns)
        self.stream = stream

    def __iter__(self) -> Iterator[FileRecord]:
        codec = text_encoding(self.encoding)
        index = 0
        for number, data in enumerate(self.stream, start=1):
            text = data.decode(codec if number == 1 else self.encoding, "surrogateescape")
            if not text.strip():
                continue
            raw = text.rstrip("\r\n")
            problem = undecodable(text, self.encoding)
            if problem is None:
                try:
                    yield self.record(index, number, json.loads(text), raw)
                    index += 1
                    continue
                except json.JSONDecodeError as exc:
                    problem = f"not JSON: {exc.msg} at column {exc.colno}"
            yield FileRecord(index, number, None, raw, problem)
            index += 1


class JsonArrayRecords(_Values):
    """The objects of a JSON array: the whole file, or the array at ``record_path``."""

    def __init__(self, stream: BinaryIO, spec: DropSpec, columns: Sequence[str]) -> None:
        super().__init__(spec, columns)
        self.stream = stream
        self.path = spec.record_path

    def __iter__(self) -> Iterator[FileRecord]:
        if self.path:
            yield from self._document()
        else:
            yield from self._streamed()

    def _document(self) -> Iterator[FileRecord]:
        text = io.TextIOWrapper(self.stream, encoding=text_encoding(self.encoding))
        try:
            document = json.load(text)
        except json.JSONDecodeError as exc:
            raise DropFileRefused(
                f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        except UnicodeDecodeError as exc:
            raise DropFileRefused(f"not valid {self.encoding}: {exc.reason}") from None
        found: Any = document
        assert self.path is not None
        for part in self.path.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if not isinstance(found, list):
            raise DropFileRefused(f"no array at record_path '{self.path}'")
        for index, item in enumerate(found):
            yield self.record(index, 0, item, json.dumps(item, ensure_ascii=False))

    def _streamed(self) -> Iterator[FileRecord]:
        """Elements decoded one at a time from a growing buffer (memory stays bounded by
        the largest element, not the file)."""
        array = _ArrayStream(self.stream, self.encoding)
        decoder = json.JSONDecoder()
        if array.skip_space() != "[":
            raise array.refuse("the file is not a JSON array (set record_path for a document)")
        array.pos += 1
        index = 0
        while True:
            char = array.skip_space()
            if char == "]":
                return
            if index and char == ",":
                array.pos += 1
                array.skip_space()
            elif index:
                raise array.refuse(f"',' or ']' expected after element {index}")
            while True:
                try:
                    value, end = decoder.raw_decode(array.buffer, array.pos)
                    break
                except json.JSONDecodeError as exc:
                    if not array.more():
                        raise array.refuse(exc.msg) from None
            raw = array.buffer[array.pos : end]
            start = array.line_at(array.pos)
            problem = undecodable(raw, self.encoding)
            if problem is not None:
                yield FileRecord(index, start, None, raw, problem)
            else:
                yield self.record(index, start, value, raw)
            array.pos = end
            index += 1


class _ArrayStream:
    """Decoded text read on demand, with the line number of any position."""

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        self.stream = stream
        self.incoming = codecs.getincrementaldecoder(text_encoding(encoding))("surrogateescape")
        self.buffer, self.pos, self.eof = "", 0, False
        self.line, self.mark = 1, 0  # the line at buffer[mark]

    def line_at(self, at: int) -> int:
        self.line += self.buffer.count("\n", self.mark, at)
        self.mark = at
        return self.line

    def more(self) -> bool:
        """Read on (what is before ``pos`` is dropped); False at the end of the file."""
        if self.eof:
            return False
        data = self.stream.read(_CHUNK)
        self.eof = not data
        self.line_at(self.pos)
        self.buffer = self.buffer[self.pos :] + self.incoming.decode(data, final=self.eof)
        self.pos = self.mark = 0
        return True

    def skip_space(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in _SPACE:
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self.more():
                return ""

    def refuse(self, what: str) -> DropFileRefused:
        return DropFileRefused(f"not valid JSON at line {self.line_at(self.pos)}: {what}")
