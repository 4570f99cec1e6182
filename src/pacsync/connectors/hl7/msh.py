"""Reading the message header (MSH) of an HL7 v2 message, and nothing else.

Deciding whether to accept a message and building its acknowledgement need only
MSH; the rest is read when the message is processed.  MSH is read from the
bytes as received: its first fields are ASCII, MSH-18 names the character set
of the whole message (HL7 table 0211), and the header fields are then decoded
in that set.  Problems are reported with their HL7 table 0357 condition code.
"""

from __future__ import annotations

import codecs
import re
import string
from dataclasses import dataclass

# HL7 table 0357: message error condition codes
SEGMENT_SEQUENCE_ERROR = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT_CODE = 201
UNSUPPORTED_PROCESSING_ID = 202
UNSUPPORTED_VERSION_ID = 203
APPLICATION_INTERNAL_ERROR = 207

CONDITION_TEXT = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION_ID: "Unsupported version id",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}

DELIMITERS = frozenset(string.punctuation)  # what may separate fields and their parts
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_CONTROL_ID = 199  # MSH-10 is ST of at most 199 characters (20 before 2.7)

# HL7 table 0211 (alternate character sets) -> Python codecs
CHARSETS = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15)},
    "ISO IR100": "iso8859-1",
    "ISO IR192": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "ISO IR14": "shift_jis",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
}


class HeaderError(Exception):
    """MSH cannot be read or names something not accepted; ``condition`` is from table 0357."""

    def __init__(self, condition: int, reason: str, field: int | None = None) -> None:
        super().__init__(reason)
        self.condition = condition
        self.reason = reason
        self.field = field  # the MSH field at fault, for ERR-2


@dataclass(frozen=True, slots=True)
class Header:
    """The MSH fields acceptance and acknowledgement depend on, as text."""

    field_separator: str
    encoding_characters: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_type: str  # MSH-9.1, e.g. ADT
    trigger: str  # MSH-9.2, e.g. A01
    control_id: str  # MSH-10
    processing_id: str  # MSH-11.1
    version: str  # MSH-12.1
    accept_ack: str  # MSH-15: AL, NE, ER, SU or empty
    application_ack: str  # MSH-16
    charset: str  # MSH-18 (first repetition), empty when not given
    encoding: str  # the Python codec for the message
    segment: str  # the MSH segment, decoded

    @property
    def sender(self) -> str:
        """Who sent it: MSH-3 and MSH-4, the scope of a control id."""
        return f"{self.sending_application}|{self.sending_facility}"

    @property
    def kind(self) -> str:
        return f"{self.message_type}^{self.trigger}" if self.trigger else self.message_type

    @property
    def enhanced(self) -> bool:
        """Enhanced acknowledgement mode: MSH-15 or MSH-16 is valued."""
        return bool(self.accept_ack or self.application_ack)


def read_header(payload: bytes, default_encoding: str = "utf-8") -> Header:
    """The header of ``payload``; :class:`HeaderError` when it is not an HL7 v2 message."""
    if not payload.startswith(b"MSH") or len(payload) < 8:
        raise HeaderError(SEGMENT_SEQUENCE_ERROR, "the message does not start with MSH")
    separator = chr(payload[3])
    raw = payload[: _segment_end(payload)]
    if separator not in DELIMITERS:
        raise HeaderError(DATA_TYPE_ERROR, "MSH-1 is not a field separator", field=1)
    latin = raw.decode("latin-1")
    fields = latin.split(separator)
    encoding_chars = fields[1] if len(fields) > 1 else ""
    if not 4 <= len(encoding_chars) <= 5 or not _distinct_delimiters(encoding_chars):
        raise HeaderError(DATA_TYPE_ERROR, "MSH-2 does not hold the encoding characters", field=2)
    component, repetition = encoding_chars[0], encoding_chars[1]
    charset = _field(fields, 18).split(repetition)[0].split(component)[0].strip()
    encoding = _codec(charset, default_encoding)
    try:
        text = raw.decode(encoding)
    except UnicodeError as exc:
        raise HeaderError(
            DATA_TYPE_ERROR, f"MSH is not valid {encoding}: {_why(exc)}", field=18
        ) from None
    control = _CONTROL.search(text)
    if control is not None:  # no HL7 value holds one (escapes stand for them); a store refuses NUL
        field = text.count(separator, 0, control.start()) + 1
        raise HeaderError(
            DATA_TYPE_ERROR,
            f"MSH-{field} holds the control character {ord(control.group()):#04x}",
            field=field,
        )
    fields = text.split(separator)
    message_type = _field(fields, 9).split(component)
    control_id = _field(fields, 10)
    if not control_id:
        raise HeaderError(REQUIRED_FIELD_MISSING, "MSH-10 (message control id) is empty", 10)
    if len(control_id) > MAX_CONTROL_ID:  # kept cut, it could be taken for another's copy
        raise HeaderError(DATA_TYPE_ERROR, f"MSH-10 is longer than {MAX_CONTROL_ID} characters", 10)
    if not message_type[0]:
        raise HeaderError(REQUIRED_FIELD_MISSING, "MSH-9 (message type) is empty", 9)
    return Header(
        field_separator=separator,
        encoding_characters=encoding_chars,
        sending_application=_field(fields, 3),
        sending_facility=_field(fields, 4),
        receiving_application=_field(fields, 5),
        receiving_facility=_field(fields, 6),
        message_type=message_type[0],
        trigger=message_type[1] if len(message_type) > 1 else "",
        control_id=control_id,
        processing_id=_field(fields, 11).split(component)[0],
        version=_field(fields, 12).split(component)[0],
        accept_ack=_field(fields, 15).upper(),
        application_ack=_field(fields, 16).upper(),
        charset=charset,
        encoding=encoding,
        segment=text,
    )


def decode(payload: bytes, header: Header) -> str:
    """The whole message as text in its character set (HeaderError when it is not)."""
    try:
        return payload.decode(header.encoding)
    except UnicodeError as exc:
        where = f"byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else "the message"
        raise HeaderError(
            DATA_TYPE_ERROR,
            f"{where} is not valid {header.encoding} (MSH-18 "
            f"{header.charset or 'empty: the default'})",
            field=18,
        ) from None


def _why(exc: UnicodeError) -> str:
    return exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)


def _distinct_delimiters(chars: str) -> bool:
    """MSH-2: component, repetition, escape, subcomponent (and truncation, 2.7), each a
    different printable mark (the field separator is already left out: MSH is split on it)."""
    return all(c in DELIMITERS for c in chars) and len(set(chars)) == len(chars)


def _segment_end(payload: bytes) -> int:
    ends = [end for end in (payload.find(b"\r"), payload.find(b"\n")) if end >= 0]
    return min(ends) if ends else len(payload)


def _field(fields: list[str], number: int) -> str:
    """MSH-n: MSH-1 is the separator itself, so MSH-n is at index n - 1."""
    index = number - 1
    return fields[index].strip() if index < len(fields) else ""


def codec(charset: str) -> str:
    """The Python codec of a character set named as HL7 table 0211 or Python names it;
    LookupError when it names none (or a codec that is not a text encoding, like base64)."""
    name = CHARSETS.get(charset.strip().upper())
    if name is not None:
        return name
    try:
        name = codecs.lookup(charset).name
        b"MSH".decode(name, "replace")  # LookupError: not a text encoding
    except ValueError:  # a NUL in the name
        raise LookupError(charset) from None
    return name


def _codec(charset: str, default: str) -> str:
    if not charset:
        return default
    try:
        return codec(charset)
    except LookupError:
        raise HeaderError(
            DATA_TYPE_ERROR, f"MSH-18 names an unknown character set {charset!r}", 18
        ) from None


__all__ = ["CHARSETS", "CONDITION_TEXT", "Header", "HeaderError", "codec", "decode", "read_header"]
