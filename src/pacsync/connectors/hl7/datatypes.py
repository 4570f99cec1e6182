"""HL7 v2.5.1 composite data types read into canonical values.

CE/CWE/CNE → :class:`Coded`, CX and EI → :class:`Identifier`, XPN → :class:`PersonName`,
XAD → :class:`Address`, XTN → :class:`Telecom`, XCN → :class:`Clinician`,
PL → :class:`Location`, NM → ``Decimal``.  Each reader takes one field repetition and
returns None when the parts that make the value are empty.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from pacsync.connectors.hl7.segments import Repetition, Segment
from pacsync.domain.clinical import (
    Address,
    Clinician,
    Coded,
    Identifier,
    Location,
    PersonName,
    Telecom,
)
from pacsync.errors import InvalidHl7Message

_NM = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")


def coded(rep: Repetition | None) -> Coded | None:
    """CE / CWE / CNE: identifier, text, coding system, then the alternate triplet."""
    if rep is None:
        return None
    value = Coded(*(rep.text(i) for i in range(1, 7)))
    return value if value.code or value.display else None


def coded_list(segment: Segment, field: int) -> tuple[Coded, ...]:
    return tuple(c for c in (coded(rep) for rep in segment.repetitions(field)) if c)


def identifier(rep: Repetition | None) -> Identifier | None:
    """CX: ID, check digit, check scheme, assigning authority (HD), identifier type."""
    if rep is None or not rep.text(1):
        return None
    return Identifier(rep.text(1), rep.text(4, 1), rep.text(4, 2), rep.text(4, 3), rep.text(5))


def identifiers(segment: Segment, field: int) -> tuple[Identifier, ...]:
    return tuple(i for i in (identifier(rep) for rep in segment.repetitions(field)) if i)


def entity(rep: Repetition | None) -> Identifier | None:
    """EI: entity identifier, namespace id, universal id, universal id type."""
    if rep is None or not rep.text(1):
        return None
    return Identifier(rep.text(1), rep.text(2), rep.text(3), rep.text(4))


def _given(rep: Repetition, first: int, further: int) -> tuple[str, ...]:
    names = [rep.text(first), *rep.text(further).split()]
    return tuple(name for name in names if name)


def person_name(rep: Repetition | None) -> PersonName | None:
    """XPN: family (FN.1), given, further given names, suffix, prefix, degree, type."""
    if rep is None:
        return None
    name = PersonName(
        family=rep.text(1),
        given=_given(rep, 2, 3),
        suffix=rep.text(4),
        prefix=rep.text(5),
        degree=rep.text(6),
        use=rep.text(7),
    )
    return name if name.family or name.given else None


def person_names(segment: Segment, field: int) -> tuple[PersonName, ...]:
    return tuple(n for n in (person_name(rep) for rep in segment.repetitions(field)) if n)


def clinician(rep: Repetition | None) -> Clinician | None:
    """XCN: ID, family, given, further given, suffix, prefix, degree, …, authority (9)."""
    if rep is None:
        return None
    name = PersonName(
        family=rep.text(2),
        given=_given(rep, 3, 4),
        suffix=rep.text(5),
        prefix=rep.text(6),
        degree=rep.text(7),
        use=rep.text(10),
    )
    if not rep.text(1) and not name.family and not name.given:
        return None
    return Clinician(rep.text(1), name, rep.text(9))


def clinicians(segment: Segment, field: int) -> tuple[Clinician, ...]:
    return tuple(c for c in (clinician(rep) for rep in segment.repetitions(field)) if c)


def addresses(segment: Segment, field: int) -> tuple[Address, ...]:
    """XAD: street (SAD.1), other designation, city, state, postal code, country, type."""
    found = []
    for rep in segment.repetitions(field):
        lines = tuple(line for line in (rep.text(1), rep.text(2)) if line)
        address = Address(lines, rep.text(3), rep.text(4), rep.text(5), rep.text(6), rep.text(7))
        if lines or address.city or address.postal_code:
            found.append(address)
    return tuple(found)


def telecoms(segment: Segment, field: int) -> tuple[Telecom, ...]:
    """XTN: the number (XTN-1, else country/area/local/extension, XTN-5..8) or the
    e-mail address (XTN-4), with its use (XTN-2) and equipment (XTN-3)."""
    found = []
    for rep in segment.repetitions(field):
        equipment = rep.text(3)
        value = rep.text(4) if equipment.upper() in ("INTERNET", "X.400") else ""
        if not value:
            value = rep.text(1) or rep.text(12)
        if not value and rep.text(7):
            country, area, local, extension = (rep.text(i) for i in (5, 6, 7, 8))
            value = " ".join(p for p in (f"+{country}" if country else "", area, local) if p)
            value += f" x{extension}" if extension else ""
        if not value:
            value = rep.text(4)
        if value:
            found.append(Telecom(value, rep.text(2), equipment))
    return tuple(found)


def location(rep: Repetition | None) -> Location | None:
    """PL: point of care, room, bed, facility (HD.1), …, building (7), floor (8)."""
    if rep is None:
        return None
    place = Location(rep.text(1), rep.text(2), rep.text(3), rep.text(4), rep.text(7), rep.text(8))
    return place if place.label else None


def read_decimal(text: str, where: str) -> Decimal | None:
    """An NM value, or None when empty."""
    text = text.strip()
    if not text:
        return None
    if not _NM.match(text):
        raise InvalidHl7Message(
            f"{where}: {text!r} is not a number",
            location=where,
            hint="An NM value is an optional sign, digits and an optional decimal point; "
            "send comparisons such as <5 as SN (^<^5).",
        )
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise InvalidHl7Message(f"{where}: {text!r} is not a number", location=where) from exc


def decimal(segment: Segment, field: int, component: int = 1, sub: int = 1) -> Decimal | None:
    return read_decimal(segment.text(field, component, sub), segment.where(field, component))


def integer(segment: Segment, field: int) -> int | None:
    """An SI / NM field that must be a whole number."""
    value = decimal(segment, field)
    if value is None:
        return None
    if value != value.to_integral_value() or abs(value) > 10**9:
        where = segment.where(field)
        raise InvalidHl7Message(
            f"{where}: {value} is not a sequence number", location=where, hint="Send 1, 2, 3 …"
        )
    return int(value)


_UNITS = {
    "S": dt.timedelta(seconds=1),
    "SEC": dt.timedelta(seconds=1),
    "M": dt.timedelta(minutes=1),
    "MIN": dt.timedelta(minutes=1),
    "H": dt.timedelta(hours=1),
    "HR": dt.timedelta(hours=1),
    "HOUR": dt.timedelta(hours=1),
    "D": dt.timedelta(days=1),
    "DAY": dt.timedelta(days=1),
    "WK": dt.timedelta(weeks=1),
}


def duration(segment: Segment, amount_field: int, units_field: int) -> dt.timedelta | None:
    """A duration given as an amount and its units (CE, minutes when empty) — SCH-9/10,
    AIS-7/8 and their kind."""
    amount = decimal(segment, amount_field)
    if amount is None:
        return None
    unit = segment.text(units_field).upper() or "MIN"
    if unit not in _UNITS:
        unit = unit.removesuffix("S")
        unit = {"MINUTE": "MIN", "SECOND": "SEC", "WEEK": "WK"}.get(unit, unit)
    if unit not in _UNITS or abs(amount) > 10**6:
        where = segment.where(units_field)
        raise InvalidHl7Message(
            f"{where}: duration {amount} {segment.text(units_field)!r} is not understood",
            location=where,
            hint="Give the units as S, MIN, H, D or WK (ISO+ or ANSI unit codes).",
        )
    return _UNITS[unit] * float(amount)
