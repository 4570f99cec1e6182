"""XML files: each element at ``record_path`` is a record, read as the file streams.

``record_path`` names the repeated element by its path (``Export/Patients/Patient``)
or its last steps (``Patient``).  A record's columns are the text of its child
elements by relative path (``Name/Family``) and attributes as ``@id`` (the
record's) or ``Name/@use`` (a child's).  The document's own encoding
declaration wins; without one, the entity's ``encoding`` is used.  Documents
with a DOCTYPE are refused (no entity expansion), and so is XML that stops
being well-formed, after the records before the fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO
from xml.parsers import expat

from pacsync.connectors.files.record_values import nulled
from pacsync.domain.drop_spec import DropSpec
from pacsync.domain.drops import FileRecord
from pacsync.errors import DropFileRefused

_CHUNK = 1 << 16
_DECLARED = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=", re.ASCII)


class XmlRecords:
    def __init__(self, stream: BinaryIO, spec: DropSpec, columns: Sequence[str]) -> None:
        self.stream = stream
        self.columns = list(columns)
        self.encoding = spec.encoding
        self.nulls = frozenset(spec.nulls)
        assert spec.record_path is not None
        self.steps = [s for s in spec.record_path.strip("/").split("/") if s]

    def __iter__(self) -> Iterator[FileRecord]:
        head = self.stream.read(_CHUNK)
        declared = _DECLARED.match(head.lstrip(b"\xef\xbb\xbf")) is not None
        parser = expat.ParserCreate(None if declared else self.encoding)
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        collected = _Collector(self, parser)
        data = head
        while True:
            final = not data
            try:
                parser.Parse(data, final)
            except expat.ExpatError as exc:
                yield from collected.take()
                where = f"line {exc.lineno} column {exc.offset + 1}"
                raise DropFileRefused(
                    f"not well-formed XML at {where}: {expat.errors.messages[exc.code]}"
                ) from None
            except _Refused as refused:
                yield from collected.take()
                raise DropFileRefused(str(refused)) from None
            yield from collected.take()
            if final:
                break
            data = self.stream.read(_CHUNK)
        if not collected.seen_root:
            raise DropFileRefused("the file has no XML element")


class _Refused(Exception):
    pass


class _Collector:
    """Expat handlers that build the records of the elements at the record path."""

    def __init__(self, reader: XmlRecords, parser: Any) -> None:
        self.reader, self.parser = reader, parser
        self.steps = reader.steps
        self.path: list[str] = []
        self.depth = 0  # the record element's depth; 0: outside any record
        self.values: dict[str, str] = {}
        self.texts: list[list[str]] = []
        self.line = 0
        self.index = 0
        self.ready: list[FileRecord] = []
        self.seen_root = False
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.text
        parser.StartDoctypeDeclHandler = self.doctype
        parser.EntityDeclHandler = self.entity

    def take(self) -> list[FileRecord]:
        ready, self.ready = self.ready, []
        return ready

    def doctype(self, *_: Any) -> None:
        raise _Refused("XML with a DOCTYPE is not read (entities could expand without bound)")

    def entity(self, *_: Any) -> None:
        raise _Refused("XML declaring entities is not read")

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.seen_root = True
        self.path.append(name)
        if not self.depth:
            if self.path[-len(self.steps) :] == self.steps:
                self.depth = len(self.path)
                self.line = self.parser.CurrentLineNumber
                self.values = {f"@{k}": v for k, v in attrs.items()}
                self.texts = [[]]
            return
        relative = "/".join(self.path[self.depth :])
        for key, value in attrs.items():
            self.values.setdefault(f"{relative}/@{key}", value)
        self.texts.append([])

    def text(self, data: str) -> None:
        if self.depth:
            self.texts[-1].append(data)

    def end(self, name: str) -> None:
        if self.depth and len(self.path) > self.depth:
            relative = "/".join(self.path[self.depth :])
            self.values.setdefault(relative, "".join(self.texts.pop()).strip())
        elif self.depth and len(self.path) == self.depth:
            nulls = self.reader.nulls
            values = tuple(nulled(self.values.get(c), nulls) for c in self.reader.columns)
            raw = "; ".join(f"{k}={v}" for k, v in self.values.items())
            self.ready.append(FileRecord(self.index, self.line, values, raw))
            self.index += 1
            self.depth = 0
        self.path.pop()
