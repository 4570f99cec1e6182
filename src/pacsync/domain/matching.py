"""DICOM attribute matching (PS3.4 C.2.2.2) as index searches apply it.

- Single value matching: the value as is; names compare folded (case and accents
  ignored, as users expect of a patient search).
- Wild card matching: ``*`` any run of characters, ``?`` one character.
- Range matching of dates: ``20240101-20241231``, ``20240101-``, ``-20241231``;
  ISO dates (``2024-01-01``) are accepted from people and normalised.
- List of UID matching: ``uid1\\uid2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pacsync.domain.imaging import fold
from pacsync.errors import InvalidRequest

_DATE = re.compile(r"^\d{8}$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Pattern:
    """A matching value split into what an index can use and what it cannot.

    ``prefix`` is the part before the first wild card; ``like`` is the whole value
    as a SQL LIKE pattern (escape character ``\\``) when it has wild cards, else
    None (single value matching)."""

    exact: str | None
    prefix: str
    like: str | None

    @property
    def matches_all(self) -> bool:
        return self.like == "%"


def pattern(value: str, *, folded: bool = False) -> Pattern:
    """The matching of ``value`` (folded first for names)."""
    text = fold(value) if folded else value
    if "*" not in text and "?" not in text:
        return Pattern(exact=text, prefix=text, like=None)
    cut = min(i for i in (text.find("*"), text.find("?")) if i >= 0)
    like = "".join(_like_char(c) for c in text)
    return Pattern(exact=None, prefix=text[:cut], like=like)


def _like_char(c: str) -> str:
    if c == "*":
        return "%"
    if c == "?":
        return "_"
    if c in "%_\\":
        return "\\" + c
    return c


def prefix_upper(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (for a
    range scan of an index); ``prefix`` must not be empty."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def date(value: str, field: str = "date") -> str:
    """A DICOM date (``YYYYMMDD``) from a DICOM or ISO date."""
    text = value.strip()
    iso = _ISO_DATE.match(text)
    if iso:
        text = "".join(iso.groups())
    if not _DATE.match(text):
        raise InvalidRequest(
            f"invalid {field} {value!r}",
            hint="Use YYYYMMDD or YYYY-MM-DD, or a range such as 20240101-20241231.",
        )
    return text


def date_range(value: str, field: str = "StudyDate") -> tuple[str | None, str | None]:
    """(from, to) of a date or date range; None where the range is open."""
    text = value.strip()
    if "-" in text and not _ISO_DATE.match(text):
        low, _, high = text.partition("-") if text.count("-") == 1 else _iso_range(text)
        low_d = date(low, field) if low else None
        high_d = date(high, field) if high else None
        if low_d is None and high_d is None:
            raise InvalidRequest(f"invalid {field} range {value!r}", hint="Give at least one end.")
        if low_d and high_d and low_d > high_d:
            raise InvalidRequest(
                f"{field} range {value!r} ends before it starts", hint="Swap its two ends."
            )
        return low_d, high_d
    day = date(text, field)
    return day, day


def _iso_range(text: str) -> tuple[str, str, str]:
    """Split ``2024-01-01-2024-12-31`` (ISO dates on both sides of the range dash)."""
    found = re.match(r"^(\d{4}-\d{2}-\d{2})?-(\d{4}-\d{2}-\d{2})?$", text)
    if not found:
        raise InvalidRequest(
            f"invalid date range {text!r}", hint="Use 20240101-20241231 or 2024-01-01-2024-12-31."
        )
    return found.group(1) or "", "-", found.group(2) or ""


def uid_list(value: str) -> list[str]:
    """UIDs of a list-of-UID match (``\\``- or ``,``-separated)."""
    return [uid.strip() for uid in re.split(r"[\\,]", value) if uid.strip()]
