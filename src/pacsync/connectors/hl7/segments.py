"""An HL7 v2 message split into segments, read field by field with locations.

:func:`split` turns the message text into :class:`Segment` views whose values come back
unescaped; each read knows where it is (``OBX(2)-5.1``) so an error can say which
segment and field are wrong.  Every field is split once into field → repetition →
component → subcomponent tuples with the message's own delimiters (an escaped
delimiter never appears raw, so plain splitting is exact); the tests hold it equal
to the ``hl7`` package's parse on every fixture.  Plain splitting is six times
faster than building the package's containers, which was most of a message's
processing time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from pacsync.connectors.hl7.dtm import FORMAT, header_offset, parse_dtm
from pacsync.connectors.hl7.escape import Delimiters, EscapeError, codec_for
from pacsync.domain.clinical import Timestamp
from pacsync.errors import InvalidHl7Message

# one field: its repetitions, each a tuple of components, each a tuple of subcomponents
RawField = tuple[tuple[tuple[str, ...], ...], ...]

_HEADERS = ("MSH", "BHS", "FHS")
_NULL = '""'  # HL7's explicit null: "delete the stored value"; read as empty


def _any(raw: tuple[tuple[str, ...], ...]) -> bool:
    """Whether a repetition holds any value (the explicit null is none)."""
    if len(raw) == 1 and len(raw[0]) == 1:  # the common case: one value
        value = raw[0][0]
        return bool(value) and value != _NULL
    return any(value and value != _NULL for component in raw for value in component)


@dataclass(frozen=True, slots=True)
class Repetition:
    """One repetition of a field: components read by 1-based position."""

    raw: tuple[tuple[str, ...], ...]
    segment: Segment
    field: int

    def text(self, component: int = 1, subcomponent: int = 1) -> str:
        """The unescaped text of one component (or subcomponent); empty when absent."""
        if component > len(self.raw):
            return ""
        subs = self.raw[component - 1]
        if subcomponent > len(subs):
            return ""
        return self.segment.unescape(subs[subcomponent - 1], self.field, component)

    def whole(self) -> str:
        """The repetition as one text, delimiters kept (for free-text values that a sender
        left unescaped)."""
        d = self.segment.delimiters
        raw = d.component.join(d.subcomponent.join(c) for c in self.raw)
        return self.segment.unescape(raw, self.field)

    def timestamp(self, component: int = 1) -> Timestamp | None:
        """A DTM component (a TS field's first), or None when empty."""
        return self.segment.read_dtm(self.text(component), self.field, component)

    def where(self, component: int | None = None) -> str:
        return self.segment.where(self.field, component)


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment; ``fields[0]`` is field 1 (for MSH, MSH-1 the field separator)."""

    name: str
    occurrence: int  # 1 for the first segment of this name in the message
    fields: tuple[RawField, ...]
    delimiters: Delimiters
    tz: dt.tzinfo | None = None  # the sender's offset (MSH-7), for times given without one

    def where(self, field: int, component: int | None = None) -> str:
        name = self.name if self.occurrence == 1 else f"{self.name}({self.occurrence})"
        return f"{name}-{field}" + (f".{component}" if component else "")

    def repetitions(self, field: int) -> tuple[Repetition, ...]:
        """The non-empty repetitions of a field."""
        if field < 1 or field > len(self.fields):
            return ()
        return tuple(Repetition(raw, self, field) for raw in self.fields[field - 1] if _any(raw))

    def first(self, field: int) -> Repetition | None:
        if field < 1 or field > len(self.fields):
            return None
        for raw in self.fields[field - 1]:
            if _any(raw):
                return Repetition(raw, self, field)
        return None

    def text(self, field: int, component: int = 1, subcomponent: int = 1) -> str:
        """The unescaped text of a field's first repetition (one component of it)."""
        rep = self.first(field)
        return rep.text(component, subcomponent) if rep else ""

    def timestamp(self, field: int, component: int = 1) -> Timestamp | None:
        """A DTM component of a field's first repetition, or None when empty."""
        return self.read_dtm(self.text(field, component), field, component)

    def read_dtm(self, text: str, field: int, component: int | None = None) -> Timestamp | None:
        """``text`` (read from ``field``, for the error) as a DTM, or None when empty."""
        if not text:
            return None
        try:
            return parse_dtm(text, self.tz)
        except ValueError as exc:
            where = self.where(field, component)
            raise InvalidHl7Message(
                f"{where}: {exc}",
                location=where,
                hint=f"Send dates and times as {FORMAT}, e.g. 20260315 or 20260315143000+0100.",
            ) from exc

    def unescape(self, raw: str, field: int, component: int | None = None) -> str:
        """``raw`` (read from ``field``, for the error) unescaped; HL7's null is empty."""
        if raw == _NULL:
            return ""
        try:
            return self.delimiters.unescape(raw)
        except EscapeError as exc:
            where = self.where(field, component)
            raise InvalidHl7Message(
                f"{where}: {exc}",
                location=where,
                hint="Escape data as \\Xhh..\\ with two hex digits per byte of the message's "
                "character set (MSH-18).",
            ) from exc


@dataclass(frozen=True, slots=True)
class Message:
    """The segments of one message, in order."""

    segments: tuple[Segment, ...]

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def all(self, name: str) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.name == name)

    def find(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def require(self, name: str, trigger: str) -> Segment:
        """The first segment ``name``, or the error that it is missing."""
        segment = self.find(name)
        if segment is None:
            raise InvalidHl7Message(
                f"{trigger} has no {name} segment, which it requires",
                location=name,
                hint=f"Check the sending system's {trigger} interface: every {trigger} "
                f"must carry a {name} segment.",
            )
        return segment


def _normalise_lines(text: str) -> str:
    """Segments end with a carriage return; files and some senders use CR LF or LF, and
    MLLP framing bytes may survive a careless capture."""
    text = text.strip("\x0b\x1c\r\n\t ")
    return text.replace("\r\n", "\r").replace("\n", "\r")


def split(text: str) -> Message:
    """Split the text of one HL7 v2 message into segments (the first must be MSH)."""
    text = _normalise_lines(text)
    if not text.startswith("MSH") or len(text) < 8:
        raise InvalidHl7Message(
            "the message does not start with an MSH segment",
            location="MSH",
            hint="An HL7 v2 message starts with MSH and its delimiters, e.g. MSH|^~\\&|.",
        )
    separator, encoding = text[3], text[4:8]
    if separator in encoding or len(set(encoding)) < 4 or separator.isalnum() or separator in "\r":
        raise InvalidHl7Message(
            f"MSH-1/MSH-2 delimiters {text[3:8]!r} are not five distinct characters",
            location="MSH-2",
            hint="MSH must begin with the field separator and four encoding characters, "
            "e.g. MSH|^~\\&|.",
        )
    component, repetition, subcomponent = encoding[0], encoding[1], encoding[3]

    def field(text: str) -> RawField:
        if component not in text and repetition not in text and subcomponent not in text:
            return (((text,),),)  # most fields: one value, nothing to split
        return tuple(
            tuple(tuple(c.split(subcomponent)) for c in rep.split(component))
            for rep in text.split(repetition)
        )

    lines = [line.split(separator) for line in text.split("\r") if line]
    first = lines[0]  # MSH: first[1] is MSH-2, first[n - 1] is MSH-n
    charset = field(first[17])[0][0][0] if len(first) > 17 else ""
    sent = field(first[6])[0][0][0] if len(first) > 6 else ""
    delimiters = Delimiters(
        field=separator,
        component=component,
        repetition=repetition,
        escape=encoding[2],
        subcomponent=subcomponent,
        codec=codec_for(charset),
    )
    tz = header_offset(sent)
    seen: dict[str, int] = {}
    segments: list[Segment] = []
    for parts in lines:
        name = parts[0].strip()
        if not name:
            continue
        seen[name] = seen.get(name, 0) + 1
        if name in _HEADERS:  # MSH-1 and MSH-2 are the delimiters themselves, not values
            fields: tuple[RawField, ...] = (
                (((separator,),),), (((encoding,),),), *(field(p) for p in parts[2:])
            )  # fmt: skip
        else:
            fields = tuple(field(p) for p in parts[1:])
        segments.append(Segment(name, seen[name], fields, delimiters, tz))
    return Message(tuple(segments))
