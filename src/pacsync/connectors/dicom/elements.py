"""Walking the data elements of an encoded dataset (PS3.5 section 7).

:func:`read_elements` returns the encoded values of the wanted elements of one
dataset level and skips everything else without decoding it: defined lengths by
moving past them, undefined-length sequences by following their items and
delimiters (PS3.5 section 7.5), other undefined-length values (encapsulated
fragments) by their items or, failing that, by searching for the sequence
delimiter.  Where an encoding is ambiguous it is read as pydicom reads it, so that
both find the same elements: an explicit VR dataset or item whose first element has
no VR is implicit VR, an element without a VR inside an explicit VR dataset is
implicit, UN of undefined length is a sequence.

Data ending before what an element announces raises :class:`Truncated`, a
structure left to pydicom :class:`Unsupported`, and sequences nested deeper than
:data:`MAX_NESTING` levels :class:`Corrupt`."""

from __future__ import annotations

from struct import Struct
from typing import BinaryIO, Final, NamedTuple

from pydicom.datadict import dictionary_VR
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

UNDEFINED_LENGTH: Final = 0xFFFFFFFF
ITEM: Final = 0xFFFEE000
ITEM_DELIMITATION: Final = 0xFFFEE00D
SEQUENCE_DELIMITATION: Final = 0xFFFEE0DD
MAX_NESTING: Final = 64  # sequence levels; real data nests a few

CHUNK: Final = 65536  # bytes read at a time after the first read
_LONG_VRS: Final = frozenset(vr.encode() for vr in EXPLICIT_VR_LENGTH_32)
_SHORT_VRS: Final = frozenset(vr.encode() for vr in STANDARD_VR) - _LONG_VRS

RawElements = dict[int, tuple[bytes | None, bytes]]  # tag -> (VR as encoded, value)


class Truncated(Exception):
    """The data ends (at byte ``end``) before what an element announces."""

    def __init__(self, end: int, tag: int | None, detail: str = "") -> None:
        super().__init__(end, tag, detail)
        self.end = end
        self.tag = tag
        self.detail = detail


class Unsupported(Exception):
    """A structure this reader leaves to pydicom."""


class Corrupt(Exception):
    """A structure no reader should follow."""


class Syntax(NamedTuple):
    """How elements are encoded: implicit or explicit VR, byte order."""

    implicit: bool
    little_endian: bool

    @property
    def byte_order(self) -> str:
        return "<" if self.little_endian else ">"


class _Codec(NamedTuple):
    implicit_header: Struct  # tag, 4-byte length
    explicit_header: Struct  # tag, VR, 2-byte length
    long_length: Struct
    tag: Struct


_CODECS: Final = {
    order: _Codec(
        Struct(order + "HHL"), Struct(order + "HH2sH"), Struct(order + "L"), Struct(order + "HH")
    )
    for order in "<>"
}


class Input:
    """The bytes of one stream, buffered forward: ``data`` holds bytes from ``base``.

    A file is read in chunks as the walk needs them; a dataset already in memory
    (inflated) is whole, or its beginning with ``complete`` false."""

    __slots__ = ("_file", "base", "complete", "data", "size")

    def __init__(
        self, data: bytes, size: int, file: BinaryIO | None = None, *, complete: bool = True
    ) -> None:
        self.data = data
        self.base = 0
        self.size = size
        self.complete = complete
        self._file = file

    def window(self, position: int, count: int, tag: int | None) -> int:
        """The offset in ``data`` of ``position``, with ``count`` bytes from there."""
        offset = position - self.base
        if offset >= 0 and offset + count <= len(self.data):
            return offset
        if position + count > self.size or self._file is None:
            raise Truncated(min(self.size, len(self.data) + self.base), tag)
        kept = self.data[offset:] if 0 <= offset < len(self.data) else b""
        start = position + len(kept)
        wanted = min(max(count - len(kept), CHUNK), self.size - start)
        self._file.seek(start)
        self.data = kept + self._file.read(wanted)
        self.base = position
        if len(self.data) < count:  # the file shrank while being read
            raise Truncated(position + len(self.data), tag)
        return 0


def read_elements(
    source: Input,
    position: int,
    syntax: Syntax,
    *,
    wanted: frozenset[int],
    first: int,
    last: int,
) -> tuple[RawElements, int]:
    """The wanted elements of the dataset at ``position``, read up to the first element
    whose tag is not in ``first..last``, or the end of the data (ignoring fewer than 8
    bytes left there, as pydicom does); and the position where reading stopped."""
    found: RawElements = {}
    codec = _CODECS[syntax.byte_order]
    implicit = syntax.implicit
    implicit_header = codec.implicit_header.unpack_from
    explicit_header = codec.explicit_header.unpack_from
    size = source.size
    data, base = source.data, source.base
    limit = len(data)
    while True:
        offset = position - base
        if offset + 12 > limit:
            if size - position < 8:
                if source.complete:
                    return found, position
                raise Truncated(size, None)
            offset = source.window(position, min(12, size - position), None)
            data, base = source.data, source.base
            limit = len(data)
        vr: bytes | None
        if implicit:
            group, element, length = implicit_header(data, offset)
            vr = None
            start = position + 8
        else:
            group, element, vr, length = explicit_header(data, offset)
            start = position + 8
            if vr not in _SHORT_VRS:
                vr, length, start = _unusual_header(data, offset, position, codec, size)
        tag = group << 16 | element
        if tag > last or tag < first:
            return found, position
        if length == UNDEFINED_LENGTH:
            if tag in wanted:
                raise Unsupported(f"{_tag_text(tag)} has an undefined length")
            position = skip_undefined(source, start, tag, vr, syntax, depth=1)
            data, base = source.data, source.base
            limit = len(data)
            continue
        position = start + length
        if position > size:
            raise Truncated(size, tag, f"its value needs bytes {start}-{position}")
        if tag in wanted:
            offset = source.window(start, length, tag)
            data, base = source.data, source.base
            limit = len(data)
            found[tag] = (vr, data[offset : offset + length])


def _unusual_header(
    data: bytes, offset: int, position: int, codec: _Codec, size: int
) -> tuple[bytes | None, int, int]:
    """VR, length and value position of an explicit VR element whose VR is not one
    with a 2-byte length: a 4-byte length, an unknown VR, or none (implicit)."""
    group, element, vr, length = codec.explicit_header.unpack_from(data, offset)
    if vr in _LONG_VRS:
        if offset + 12 > len(data):
            raise Truncated(size, group << 16 | element)
        return vr, codec.long_length.unpack_from(data, offset + 8)[0], position + 12
    if b"AA" <= vr <= b"ZZ":  # unknown VR: pydicom assumes a 2-byte length
        return vr, length, position + 8
    return None, codec.implicit_header.unpack_from(data, offset)[2], position + 8


def skip_undefined(
    source: Input, position: int, tag: int, vr: bytes | None, syntax: Syntax, *, depth: int
) -> int:
    """The position after the undefined-length value of ``tag`` starting at ``position``."""
    if vr == b"UN":
        vr = b"SQ"
    elif vr is None:
        try:
            vr = dictionary_VR(tag).encode()
        except KeyError:  # private or unknown: a sequence if items follow
            offset = source.window(position, 4, tag)
            group, element = _CODECS[syntax.byte_order].tag.unpack_from(source.data, offset)
            vr = b"SQ" if group << 16 | element == ITEM else None
    if vr == b"SQ":
        return _skip_sequence(source, position, tag, syntax, depth)
    return _skip_fragments(source, position, tag, syntax)


def _skip_sequence(source: Input, position: int, tag: int, syntax: Syntax, depth: int) -> int:
    if depth > MAX_NESTING:
        raise Corrupt(f"sequences nested deeper than {MAX_NESTING} levels at byte {position}")
    item_header = _CODECS[syntax.byte_order].implicit_header.unpack_from
    while True:
        offset = source.window(position, 8, tag)
        group, element, length = item_header(source.data, offset)
        position += 8
        if group << 16 | element == SEQUENCE_DELIMITATION:
            return position
        # pydicom reads anything else here as an item too
        if length == UNDEFINED_LENGTH:
            position = _skip_item(source, position, tag, syntax, depth)
        else:
            position += length
            if position > source.size:
                raise Truncated(source.size, tag, f"an item needs bytes up to {position}")


def _skip_item(source: Input, position: int, tag: int, syntax: Syntax, depth: int) -> int:
    """The position after the item delimiter of an undefined-length item."""
    if not syntax.implicit and source.size - position >= 6:
        offset = source.window(position, 6, tag)
        first, second = source.data[offset + 4], source.data[offset + 5]
        if not (0x40 < first < 0x5B and 0x40 < second < 0x5B):
            syntax = Syntax(True, syntax.little_endian)
    while True:
        element_tag, vr, length, start = _element_header(source, position, syntax, tag)
        if element_tag == ITEM_DELIMITATION:
            return start
        if length == UNDEFINED_LENGTH:
            position = skip_undefined(source, start, element_tag, vr, syntax, depth=depth + 1)
        else:
            position = start + length
            if position > source.size:
                raise Truncated(source.size, element_tag, f"its value needs bytes up to {position}")


def _element_header(
    source: Input, position: int, syntax: Syntax, within: int
) -> tuple[int, bytes | None, int, int]:
    """Tag, VR (None when implicit), length and value position of one element."""
    codec = _CODECS[syntax.byte_order]
    offset = source.window(position, 8, within)
    data = source.data
    if syntax.implicit:
        group, element, length = codec.implicit_header.unpack_from(data, offset)
        return group << 16 | element, None, length, position + 8
    group, element, vr, length = codec.explicit_header.unpack_from(data, offset)
    if vr in _SHORT_VRS or (vr not in _LONG_VRS and b"AA" <= vr <= b"ZZ"):
        return group << 16 | element, vr, length, position + 8
    if vr in _LONG_VRS:
        offset = source.window(position, 12, group << 16 | element)
        length = codec.long_length.unpack_from(source.data, offset + 8)[0]
        return group << 16 | element, vr, length, position + 12
    group, element, length = codec.implicit_header.unpack_from(data, offset)
    return group << 16 | element, None, length, position + 8


def _skip_fragments(source: Input, position: int, tag: int, syntax: Syntax) -> int:
    """An undefined-length value that is no sequence: items of fragments up to a
    sequence delimiter (PS3.5 A.4); else the first sequence delimiter in the bytes."""
    codec = _CODECS[syntax.byte_order]
    start = position
    while position + 8 <= source.size:
        offset = source.window(position, 8, tag)
        group, element, length = codec.implicit_header.unpack_from(source.data, offset)
        if group << 16 | element == SEQUENCE_DELIMITATION:
            return position + 8
        if group << 16 | element != ITEM:
            break
        position += 8 + length
    return _search_delimiter(source, start, tag, codec.tag.pack(0xFFFE, 0xE0DD))


def _search_delimiter(source: Input, position: int, tag: int, delimiter: bytes) -> int:
    while position + 4 <= source.size:
        count = min(CHUNK * 16, source.size - position)
        offset = source.window(position, count, tag)
        found = source.data.find(delimiter, offset, offset + count)
        if found >= 0:
            return position + (found - offset) + 8
        if count < 4 or position + count >= source.size:
            break
        position += count - 3  # a delimiter may straddle two chunks
    raise Truncated(source.size, tag, "no sequence delimiter before the end")


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
