"""Element values as an InstanceHeader holds them, decoded the way pydicom decodes them.

Two ways in, one result:

* :func:`text_of` and :func:`integer_of` turn a value as pydicom gives it
  (``ds[tag].value``) into the header's form;
* :func:`decode_value` decodes the encoded bytes of one element to a value those two
  functions turn into the same result: the common value representations (VR) are
  decoded here (PS3.5 section 6.2), the rare ones by pydicom's own converters.

The header's form: text values as pydicom decodes them (Specific Character Set
applied, trailing spaces and NULs stripped per value as each VR has it), multiple
values joined with a backslash, a person name as its string form (all component
groups, ``Yamada^Tarou=山田^太郎=やまだ^たろう``), ``None`` for an absent or empty
value or for one that is no text (a number, bytes, a sequence).  Integer values are
the first of the element's values, ``None`` when it is empty, no integer, or
not a number (an IS value pydicom cannot parse)."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, MutableSequence, Sequence
from typing import Any, Final

from pydicom.charset import convert_encodings, decode_bytes, default_encoding
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.errors import BytesLengthException
from pydicom.tag import BaseTag
from pydicom.valuerep import TEXT_VR_DELIMS, PersonName

from pacsync.domain.imaging import TAGS
from pacsync.errors import InvalidDicom

SPECIFIC_CHARACTER_SET: Final = 0x00080005
TRANSFER_SYNTAX_UID: Final = 0x00020010
DEFAULT_ENCODINGS: Final = (default_encoding,)

# what pydicom raises for a value it cannot convert
CONVERSION_ERRORS: Final = (
    ValueError,
    TypeError,
    LookupError,
    NotImplementedError,
    OverflowError,
    BytesLengthException,
)


class _Deferred:
    """A value this module leaves to pydicom's converters."""


DEFERRED: Final = _Deferred()

Decoded = str | int | None | _Deferred
Decoder = Callable[[bytes, Sequence[str], bool], Decoded]


def text_of(value: object) -> str | None:
    """The header's text form of a value pydicom gives (or :func:`decode_value` does)."""
    if isinstance(value, str | PersonName):
        return str(value) or None
    if isinstance(value, MutableSequence) and all(
        isinstance(item, str | PersonName) for item in value
    ):
        return "\\".join(str(item) for item in value) or None
    return None


def integer_of(value: object) -> int | None:
    """The header's integer form: the first value, if it is a whole number."""
    if isinstance(value, MutableSequence):
        value = value[0] if len(value) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def undecodable(tag: int, exc: Exception) -> InvalidDicom:
    """The error for an element whose value pydicom cannot convert."""
    first_line = (str(exc).splitlines() or [""])[0]
    name = keyword_for_tag(tag) or "element"
    return InvalidDicom(
        f"cannot decode {_tag_text(tag)} {name}: {type(exc).__name__}: {first_line}"
    )


def encodings_of(value: Any) -> list[str]:
    """The Python codecs for a Specific Character Set value, mapped as pydicom maps it."""
    try:
        return convert_encodings(value)
    except CONVERSION_ERRORS as exc:
        raise undecodable(SPECIFIC_CHARACTER_SET, exc) from exc


def character_set_value(
    vr: bytes | None, raw: bytes, *, little_endian: bool, implicit: bool
) -> object:
    """The (0008,0005) value as pydicom gives it: a string or a list of strings."""
    if vr in (None, b"CS"):
        text = raw.decode(default_encoding).rstrip(" \x00")
        return text.split("\\") if "\\" in text else text
    return _converted(
        SPECIFIC_CHARACTER_SET,
        vr,
        raw,
        DEFAULT_ENCODINGS,
        little_endian=little_endian,
        implicit=implicit,
    )


def decode_value(
    tag: int,
    vr: bytes | None,
    raw: bytes,
    encodings: Sequence[str],
    *,
    little_endian: bool,
    implicit: bool,
) -> object:
    """The value of one element: ``vr`` as encoded (``None`` in implicit VR, where
    the data dictionary's VR applies); an InvalidDicom when pydicom cannot convert it."""
    if vr is None or (vr == b"UN" and len(raw) < 0xFFFF):  # as pydicom, the dictionary's VR
        decoder = _DECODERS.get(_DICTIONARY_VR[tag])
    else:
        decoder = _DECODERS.get(vr)
    if decoder is not None:
        value = decoder(raw, encodings, little_endian)
        if value is not DEFERRED:
            return value
    return _converted(tag, vr, raw, encodings, little_endian=little_endian, implicit=implicit)


def _converted(
    tag: int,
    vr: bytes | None,
    raw: bytes,
    encodings: Sequence[str],
    *,
    little_endian: bool,
    implicit: bool,
) -> Any:
    element = RawDataElement(
        BaseTag(tag),
        None if vr is None else vr.decode(default_encoding),
        len(raw),
        raw,
        0,
        implicit,
        little_endian,
    )
    try:
        return convert_raw_data_element(element, encoding=list(encodings)).value
    except CONVERSION_ERRORS as exc:
        raise undecodable(tag, exc) from exc


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


# Decoders of the VRs an indexed attribute normally has.  Each returns what text_of
# and integer_of turn into the same result as pydicom's value would give, or
# DEFERRED for a value it leaves to pydicom.


def _string(raw: bytes, encodings: Sequence[str], little_endian: bool) -> Decoded:
    """AS, CS, DA, DT, TM, UI: the default repertoire, values joined as encoded."""
    return raw.decode(default_encoding).rstrip(" \x00")


def _short_text(raw: bytes, encodings: Sequence[str], little_endian: bool) -> Decoded:
    """SH, LO, UC: character set applied, each value's trailing padding stripped."""
    decoded = decode_bytes(raw, encodings, TEXT_VR_DELIMS)
    return "\\".join(value.rstrip("\0 ") for value in decoded.split("\\"))


def _long_text(raw: bytes, encodings: Sequence[str], little_endian: bool) -> Decoded:
    """ST, LT, UT: one value, backslashes included."""
    return decode_bytes(raw, encodings, TEXT_VR_DELIMS).rstrip("\0 ")


def _person_name(raw: bytes, encodings: Sequence[str], little_endian: bool) -> Decoded:
    """PN: each name without its empty trailing component groups."""
    decoded = decode_bytes(raw.rstrip(b"\x00 "), encodings, TEXT_VR_DELIMS)
    names = []
    for name in decoded.split("\\"):
        groups = name.split("=")
        while groups and not groups[-1]:
            groups.pop()
        names.append("=".join(groups))
    return "\\".join(names)


_INTEGER_STRING = re.compile(r" *[+-]?[0-9]{1,15} *| *")


def _integer_string(raw: bytes, encodings: Sequence[str], little_endian: bool) -> Decoded:
    """IS: plain decimal integers here; anything else as pydicom parses it."""
    values = raw.decode(default_encoding).rstrip(" \x00").split("\\")
    if not all(_INTEGER_STRING.fullmatch(value) for value in values):
        return DEFERRED
    first = values[0].strip()
    return int(first) if first else None


def _binary(code: str) -> Decoder:
    little = struct.Struct("<" + code)
    big = struct.Struct(">" + code)

    def decode(raw: bytes, encodings: Sequence[str], little_endian: bool) -> Decoded:
        if not raw:
            return None
        if len(raw) % little.size:
            return DEFERRED  # pydicom refuses it; its error is the one to report
        unpacked: int = (little if little_endian else big).unpack_from(raw)[0]
        return unpacked

    return decode


_DECODERS: Final[dict[bytes, Decoder]] = {
    **dict.fromkeys((b"AS", b"CS", b"DA", b"DT", b"TM", b"UI"), _string),
    **dict.fromkeys((b"SH", b"LO", b"UC"), _short_text),
    **dict.fromkeys((b"ST", b"LT", b"UT"), _long_text),
    b"PN": _person_name,
    b"IS": _integer_string,
    b"US": _binary("H"),
    b"SS": _binary("h"),
    b"UL": _binary("L"),
    b"SL": _binary("l"),
}


# the VR of each indexed attribute (and of the transfer syntax) in implicit VR
_DICTIONARY_VR: Final = {
    tag: dictionary_VR(tag).encode() for tag in (*TAGS.values(), TRANSFER_SYNTAX_UID)
}
