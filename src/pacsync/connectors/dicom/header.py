"""The fast DICOM header reader: the indexed attributes of a Part 10 file.

:func:`read_header` parses the file itself (PS3.10 section 7): the 128-byte preamble
and ``DICM`` prefix, the file meta information (explicit VR little endian), then the
dataset in its transfer syntax's encoding: implicit VR little endian, explicit VR
big endian, explicit VR little endian (all others, encapsulated ones included), and
deflated explicit VR little endian (inflated as far as needed).  It reads the first
16 KiB and more only when needed, stops at the first top-level element after
:data:`~pacsync.domain.imaging.LAST_TAG`, skips private elements, sequences and
everything else not indexed without decoding them, and never reads pixel data.

:func:`header_from_dataset` is the same result from a dataset pydicom has read; it
is the reference the reader is tested against, and the reader's way for the files
it leaves to pydicom (no transfer syntax in the meta information, implicit VR meta
information, command elements, an indexed attribute of undefined length).

Errors: :class:`~pacsync.errors.InvalidDicom` with a one-line reason for a file that
is not DICOM, is truncated before the last indexed attribute, announces lengths it
does not hold, or has no SOP Instance UID; ``OSError`` from reading the file as it
came."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

from pydicom import dcmread
from pydicom.dataset import Dataset

from pacsync.connectors.dicom.elements import (
    Corrupt,
    Input,
    Syntax,
    Truncated,
    Unsupported,
    read_elements,
)
from pacsync.connectors.dicom.values import (
    CONVERSION_ERRORS,
    DEFAULT_ENCODINGS,
    SPECIFIC_CHARACTER_SET,
    TRANSFER_SYNTAX_UID,
    character_set_value,
    decode_value,
    encodings_of,
    integer_of,
    text_of,
    undecodable,
)
from pacsync.domain.imaging import INTEGER_FIELDS, LAST_TAG, TAGS, InstanceHeader
from pacsync.errors import InvalidDicom

IMPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN: Final = "1.2.840.10008.1.2.2"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1.99"

PREAMBLE: Final = 128
FIRST_READ: Final = 16384
INFLATE_FIRST: Final = 1 << 20  # inflated bytes tried first; then up to INFLATE_MOST
INFLATE_MOST: Final = 16 << 20  # a header further in is refused, not inflated

_EXPLICIT_LITTLE: Final = Syntax(implicit=False, little_endian=True)
_META_WANTED: Final = frozenset({TRANSFER_SYNTAX_UID})
_WANTED: Final = frozenset(TAGS.values())
_FIELDS: Final = tuple((name, tag, name in INTEGER_FIELDS) for name, tag in TAGS.items())
_PIXEL_DATA_TAGS: Final = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})


def read_header(path: Path) -> InstanceHeader:
    """The indexed attributes of the DICOM file at ``path`` (a HeaderReader)."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        head = file.read(FIRST_READ)
        if len(head) < PREAMBLE + 4:
            what = "empty file" if not head else f"{len(head)} bytes"
            raise InvalidDicom(f"not DICOM: {what}, no DICM prefix at byte {PREAMBLE}")
        if head[PREAMBLE : PREAMBLE + 4] != b"DICM":
            raise InvalidDicom(f"not DICOM: no DICM prefix at byte {PREAMBLE}")
        try:
            return _parse(Input(head, max(size, len(head)), file), file)
        except Unsupported:
            return _read_with_pydicom(file, size)


def header_from_dataset(ds: Dataset) -> InstanceHeader:
    """The indexed attributes of a dataset pydicom has read (the reference result)."""
    values: dict[str, Any] = {}
    for name, tag, integer in _FIELDS:
        value = _value_in(ds, tag)
        values[name] = integer_of(value) if integer else text_of(value)
    meta = getattr(ds, "file_meta", None)
    syntax = None if meta is None else _value_in(meta, TRANSFER_SYNTAX_UID)
    values["transfer_syntax_uid"] = text_of(syntax)
    return _header(values)


def _value_in(ds: Dataset, tag: int) -> object:
    try:
        element = ds.get(tag)
    except CONVERSION_ERRORS as exc:
        raise undecodable(tag, exc) from exc
    return None if element is None else element.value


def _header(values: dict[str, Any]) -> InstanceHeader:
    if not values["sop_instance_uid"]:
        raise InvalidDicom("no SOP Instance UID (0008,0018)")
    return InstanceHeader(**values)


def _parse(source: Input, file: BinaryIO) -> InstanceHeader:
    try:
        return _parse_file(source, file)
    except Truncated as exc:
        raise InvalidDicom(_truncated(exc)) from None
    except Corrupt as exc:
        raise InvalidDicom(str(exc)) from None


def _parse_file(source: Input, file: BinaryIO) -> InstanceHeader:
    position = PREAMBLE + 4
    if not _looks_explicit(source, position):
        raise Unsupported("file meta information in implicit VR")
    meta, position = read_elements(
        source, position, _EXPLICIT_LITTLE, wanted=_META_WANTED, first=0x00020000, last=0x0002FFFF
    )
    if TRANSFER_SYNTAX_UID not in meta:
        raise Unsupported("no transfer syntax in the file meta information")
    vr, raw = meta[TRANSFER_SYNTAX_UID]
    transfer_syntax = text_of(
        decode_value(
            TRANSFER_SYNTAX_UID, vr, raw, DEFAULT_ENCODINGS, little_endian=True, implicit=False
        )
    )
    if source.size - position >= 2:
        offset = source.window(position, 2, None)
        if source.data[offset] == 0 and source.data[offset + 1] == 0:
            raise Unsupported("command elements (group 0000) in the dataset")
    if transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return _parse_deflated(file, position, transfer_syntax)
    syntax = Syntax(
        implicit=transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN,
        little_endian=transfer_syntax != EXPLICIT_VR_BIG_ENDIAN,
    )
    return _parse_dataset(source, position, syntax, transfer_syntax)


def _parse_dataset(
    source: Input, position: int, syntax: Syntax, transfer_syntax: str | None
) -> InstanceHeader:
    syntax = _actual_syntax(source, position, syntax)
    found, _ = read_elements(source, position, syntax, wanted=_WANTED, first=0, last=LAST_TAG)
    little_endian, implicit = syntax.little_endian, syntax.implicit
    encodings: list[str] = list(DEFAULT_ENCODINGS)
    if SPECIFIC_CHARACTER_SET in found:
        vr, raw = found[SPECIFIC_CHARACTER_SET]
        encodings = encodings_of(
            character_set_value(vr, raw, little_endian=little_endian, implicit=implicit)
        )
    values: dict[str, Any] = {"transfer_syntax_uid": transfer_syntax}
    for name, tag, integer in _FIELDS:
        element = found.get(tag)
        if element is None:
            values[name] = None
            continue
        value = decode_value(
            tag, element[0], element[1], encodings, little_endian=little_endian, implicit=implicit
        )
        values[name] = integer_of(value) if integer else text_of(value)
    return _header(values)


def _actual_syntax(source: Input, position: int, syntax: Syntax) -> Syntax:
    """The syntax as pydicom reads the dataset: its first element tells implicit VR
    from explicit VR, whatever the transfer syntax says (some writers get it wrong)."""
    if source.size - position < 6:
        return syntax
    implicit = not _looks_explicit(source, position)
    if implicit == syntax.implicit:
        return syntax
    offset = source.window(position, 4, None)
    order: Literal["little", "big"] = "little" if syntax.little_endian else "big"
    group = int.from_bytes(source.data[offset : offset + 2], order)
    element = int.from_bytes(source.data[offset + 2 : offset + 4], order)
    if group << 16 | element in _PIXEL_DATA_TAGS:
        return syntax
    return Syntax(implicit, syntax.little_endian)


def _looks_explicit(source: Input, position: int) -> bool:
    """Whether the element at ``position`` has a VR: two capital letters after the tag."""
    if source.size - position < 6:
        return True
    offset = source.window(position, 6, None)
    first, second = source.data[offset + 4], source.data[offset + 5]
    return 0x40 < first < 0x5B and 0x40 < second < 0x5B


def _parse_deflated(file: BinaryIO, position: int, transfer_syntax: str) -> InstanceHeader:
    """The dataset after the meta information is deflated (PS3.5 A.5): inflate its
    beginning, and more only if the indexed attributes are not all in it."""
    limit = INFLATE_FIRST
    while True:
        data, complete = _inflate(file, position, limit)
        inflated = Input(data, len(data), complete=complete)
        try:
            return _parse_dataset(inflated, 0, _EXPLICIT_LITTLE, transfer_syntax)
        except Truncated as exc:
            if complete:
                detail = " ".join(filter(None, [exc.detail, "(inflated dataset)"]))
                raise Truncated(exc.end, exc.tag, detail) from None
            if limit >= INFLATE_MOST:
                reason = f"deflated dataset: no end of the header in its first {INFLATE_MOST} bytes"
                raise Corrupt(reason) from None
            limit = INFLATE_MOST
        except Unsupported:
            raise Corrupt("deflated dataset with a structure this reader does not follow") from None


def _inflate(file: BinaryIO, position: int, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` inflated bytes of the raw deflate stream at ``position``, and
    whether that is the whole stream."""
    file.seek(position)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    parts: list[bytes] = []
    total = 0
    pending = b""
    try:
        while total < limit and not inflater.eof:
            if not pending:
                pending = file.read(65536)
                if not pending:
                    raise Corrupt("truncated deflated data")
            part = inflater.decompress(pending, limit - total)
            pending = inflater.unconsumed_tail
            parts.append(part)
            total += len(part)
    except zlib.error as exc:
        raise Corrupt(f"corrupt deflated data: {exc}") from None
    return b"".join(parts), inflater.eof


def _truncated(exc: Truncated) -> str:
    where = f" in ({exc.tag >> 16:04X},{exc.tag & 0xFFFF:04X})" if exc.tag is not None else ""
    detail = f": {exc.detail}" if exc.detail else ""
    return f"truncated at byte {exc.end}{where}{detail}"


class _Bounded:
    """The open file as pydicom reads it: reads never go past the file's size (so a
    garbage length costs no memory), and a failed read is kept to be raised as it was."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._file = file
        self._size = size
        self.failure: OSError | None = None

    def read(self, count: int = -1) -> bytes:
        left = self._size - self._file.tell()
        if count < 0 or count > left:
            count = max(left, 0)
        try:
            return self._file.read(count)
        except OSError as exc:
            self.failure = exc
            raise

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


def _read_with_pydicom(file: BinaryIO, size: int) -> InstanceHeader:
    file.seek(0)
    bounded = _Bounded(file, size)
    try:
        ds = dcmread(bounded, stop_before_pixels=True, specific_tags=list(_WANTED))
    except Warning:
        raise
    except Exception as exc:  # pydicom's failures have no common base: all are the file's
        if bounded.failure is not None:
            raise bounded.failure from None
        reason = (str(exc).splitlines() or [""])[0]
        raise InvalidDicom(f"unreadable: {type(exc).__name__}: {reason}") from exc
    return header_from_dataset(ds)
