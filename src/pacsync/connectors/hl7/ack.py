"""Acknowledgements (ACK) of HL7 v2 messages, original and enhanced mode (HL7 2.5.1, 2.9).

The ACK is built from the received MSH alone, with the ``hl7`` package: sender
and receiver swapped, the trigger copied, MSA-2 echoing the control id.  An
error or a rejection adds MSA-3 and an ERR segment naming the HL7 table 0357
condition, where it was found (ERR-2) and why (ERR-8).  In enhanced mode the
commit acknowledgement is CA/CE/CR and MSH-15 says whether one is sent at all.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import time
import uuid
from enum import StrEnum
from typing import Any

import hl7

from pacsync.connectors.hl7.msh import CONDITION_TEXT, Header

APPLICATION = "PACSYNC"
MSA_3_LENGTH = 80  # MSA-3 is ST of at most 80 characters; ERR-8 (TX) holds the whole reason


class AckCode(StrEnum):
    """HL7 table 0008."""

    AA = "AA"  # application accept
    AE = "AE"  # application error
    AR = "AR"  # application reject
    CA = "CA"  # commit accept (enhanced mode)
    CE = "CE"  # commit error
    CR = "CR"  # commit reject

    @property
    def accepted(self) -> bool:
        return self in (AckCode.AA, AckCode.CA)


_ENHANCED = {AckCode.AA: AckCode.CA, AckCode.AE: AckCode.CE, AckCode.AR: AckCode.CR}
# CR is for a type, trigger, processing id or version not taken (table 0357, 200-203); a
# message not committed for any other reason (a store down, an oversize block) is CE
_COMMIT_REJECTS = frozenset({200, 201, 202, 203})


def ack_code(
    header: Header | None, outcome: AckCode, condition: int | None = None
) -> AckCode | None:
    """The code to answer with for ``outcome`` (AA/AE/AR) and its table 0357 ``condition``,
    or None when MSH-15 asks for none."""
    if header is None or not header.enhanced:
        return outcome
    code = _ENHANCED[outcome]
    if code is AckCode.CR and condition not in _COMMIT_REJECTS:
        code = AckCode.CE
    wanted = header.accept_ack or "AL"
    if (
        wanted == "NE"
        or (wanted == "ER" and code.accepted)
        or (wanted == "SU" and not code.accepted)
    ):
        return None
    return code


def build_ack(
    header: Header,
    code: AckCode,
    *,
    condition: int | None = None,
    reason: str = "",
    field: int | None = None,
    location: str = "",
    control_id: str | None = None,
    msh_fields: dict[int, str] | None = None,
) -> bytes:
    """The ACK of the message whose MSH is ``header``, encoded in the message's character set.

    The fault is in MSH-``field``, or at ``location`` as pacsync names places (``PID-7``,
    ``OBX(2)-5.1``, ``MRG``); ``control_id`` is the ACK's own MSH-10 (a fresh one when
    None); ``msh_fields`` sets more of its MSH fields by number."""
    sep = header.field_separator
    segments = list(_template(_template_key(header), str(code)))
    msh = segments[0].split(sep)
    msh[6], msh[9] = _timestamp(), control_id or _control_id()
    segments[0] = sep.join(msh)
    segments[1] = segments[1].replace(_PLACEHOLDER, header.control_id)
    component = header.encoding_characters[0]
    subcomponent = header.encoding_characters[3] if len(header.encoding_characters) > 3 else "&"
    more = dict(msh_fields or {})
    if header.charset:  # the ACK is in the message's character set: say so
        more[18] = header.charset
    if more:
        msh = segments[0].split(sep)
        msh += [""] * (max(more) - len(msh))
        for number, value in more.items():
            msh[number - 1] = value
        segments[0] = sep.join(msh)
    if condition is not None:
        text = _clean(reason or CONDITION_TEXT.get(condition, ""), header)
        if _version(header.version) < (2, 7):  # MSA-3 was withdrawn in 2.7: ERR-8 says it
            segments[1] += f"{sep}{text[:MSA_3_LENGTH]}"
        label = _clean(CONDITION_TEXT.get(condition, ""), header)
        place = _place(location) if location else ("MSH", "1", str(field)) if field else ()
        erl = component.join(place)
        if _older_than_25(header.version):  # ERR-1: segment^sequence^field^code&text&table
            where = component.join((*(place or ("MSH", "1")), "")[:3]) + component
            segments.append(f"ERR{sep}{where}{condition}{subcomponent}{label}{subcomponent}HL70357")
        else:
            severity = "E"
            segments.append(
                sep.join(
                    [
                        "ERR",
                        "",
                        erl,
                        f"{condition}{component}{label}{component}HL70357",
                        severity,
                        "",
                        "",
                        "",
                        text,
                    ]
                )
            )
    return ("\r".join(segments) + "\r").encode(header.encoding, errors="replace")


_PLACE = re.compile(r"([A-Z][A-Z0-9]{2})(?:\((\d+)\))?(?:-(\d+)(?:\.(\d+))?)?")


def _place(location: str) -> tuple[str, ...]:
    """``PID-7`` as ERL (ERR-2): segment, sequence, field, repetition, component."""
    found = _PLACE.fullmatch(location.strip())
    if found is None:
        return ()
    segment, sequence, field, component = found.groups()
    place = [segment, sequence or "1", field or ""]
    if component:
        place += ["1", component]
    return tuple(p for p in place if p) if not field else tuple(place)


def wants_application_ack(header: Header, accepted: bool) -> bool:
    """Whether MSH-16 asks for an application ACK of a message processed (``accepted``)
    or not: AL always, ER on an error, SU on success; NE or empty (original mode) never."""
    wanted = header.application_ack
    return wanted == "AL" or (wanted == "ER" and not accepted) or (wanted == "SU" and accepted)


def application_ack(
    header: Header,
    outcome: AckCode,
    *,
    control_id: str,
    condition: int | None = None,
    reason: str = "",
    location: str = "",
) -> bytes:
    """The application ACK (AA/AE/AR) of a processed message, sent as a message of its own:
    it asks for an accept ACK back (MSH-15 AL) and for no application ACK (MSH-16 NE)."""
    return build_ack(
        header, outcome, condition=condition, reason=reason, location=location,
        control_id=control_id, msh_fields={15: "AL", 16: "NE"},
    )  # fmt: skip


_PLACEHOLDER = "\x01"


def _template_key(header: Header) -> str:
    """MSH without what differs per message (MSH-7, MSH-10): ACKs of one feed share it."""
    fields = header.segment.split(header.field_separator)
    fields += [""] * (10 - len(fields))
    fields[6], fields[9] = "", _PLACEHOLDER
    return header.field_separator.join(fields)


@functools.lru_cache(maxsize=512)
def _template(segment: str, code: str) -> tuple[str, ...]:
    """The ACK built by ``hl7`` for a header, its MSA-2 still the placeholder."""
    try:
        parts = [str(p) for p in hl7.parse(segment).create_ack(code, message_id=_PLACEHOLDER)]
    except Exception:  # delimiters the hl7 package cannot take: the same ACK, built here
        parts = _plain_template(segment, code)
    sep, component = segment[3], segment[4]
    msh = parts[0].split(sep)
    if _version(msh[11].split(component)[0]) < (2, 3, 1):
        msh[8] = component.join(msh[8].split(component)[:2])  # MSH-9.3 came with 2.3.1
        parts[0] = sep.join(msh)
    return tuple(parts)


def _plain_template(segment: str, code: str) -> list[str]:
    """What ``hl7``'s ``create_ack`` makes of an MSH: sender and receiver swapped,
    ``ACK^<trigger>^ACK``, the processing and version ids copied, MSA-2 the placeholder."""
    sep = segment[3]
    fields = segment.split(sep)
    fields += [""] * (12 - len(fields))
    component = fields[1][0]
    trigger = fields[8].split(component)[1] if component in fields[8] else ""
    msh = [
        "MSH", fields[1], fields[4], fields[5], fields[2], fields[3], "", "",
        component.join(["ACK", trigger, "ACK"]), _PLACEHOLDER, fields[10], fields[11],
    ]  # fmt: skip
    return [sep.join(msh), sep.join(["MSA", code, _PLACEHOLDER])]


def unreadable_ack(reason: str, condition: int) -> bytes:
    """A reject for bytes without a readable MSH: no control id to echo, ASCII, version 2.5.1."""
    now = _timestamp()
    text = _ascii(reason)
    return (
        f"MSH|^~\\&|{APPLICATION}||||{now}||ACK^^ACK|{_control_id()}|P|2.5.1\r"
        f"MSA|AR|UNKNOWN|{text[:MSA_3_LENGTH]}\r"  # MSA-2 is required: no control id was read
        f"ERR|||{condition}^{CONDITION_TEXT.get(condition, '')}^HL70357|E||||{text}\r"
    ).encode("ascii")


def _control_id() -> str:
    return uuid.uuid4().hex[:20]


_STAMP: list[Any] = [0, ""]  # the second last formatted, and its text


def _timestamp() -> str:
    """MSH-7 of an ACK: UTC to the second, formatted once per second."""
    now = int(time.time())
    if _STAMP[0] != now:
        _STAMP[:] = [now, dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%d%H%M%S")]
    return str(_STAMP[1])


def _older_than_25(version: str) -> bool:
    return _version(version) < (2, 5)


def _version(text: str) -> tuple[int, ...]:
    """``2.3.1`` as (2, 3, 1); unreadable versions count as current."""
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (9,)


def _clean(text: str, header: Header) -> str:
    """Free text without the message's delimiters (they would split the field)."""
    for char in header.field_separator + header.encoding_characters + "\r\n":
        text = text.replace(char, " ")
    return text[:200]


def _ascii(text: str) -> str:
    cleaned = "".join(c if 32 <= ord(c) < 127 and c not in "|^~\\&" else " " for c in text)
    return cleaned[:200]


__all__ = [
    "APPLICATION",
    "AckCode",
    "ack_code",
    "application_ack",
    "build_ack",
    "unreadable_ack",
    "wants_application_ack",
]
