"""Legacy column values as the DICOM header writes them.

Legacy databases keep dates as DATE, TIMESTAMP, CHAR or even INTEGER columns, and text
in space-padded CHAR columns; the index wants ``YYYYMMDD`` dates, ``HHMMSS[.FFFFFF]``
times, stripped text and integers.  A value that cannot be read as what its attribute
is counts as absent (``None``) rather than as a wrong value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal

_ISO_DATE = re.compile(r"^(\d{4})[-./](\d{1,2})[-./](\d{1,2})")
_DAY_FIRST = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")  # 31.12.2019, as Firebird casts
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?$")
_DICOM_TIME = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")


def text(value: object) -> str | None:
    """Stripped text; ``None`` for NULL and for empty or blank values."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    result = str(value).strip(" \x00\t\r\n")
    return result or None


def date(value: object) -> str | None:
    """``YYYYMMDD`` from a DATE or TIMESTAMP, or from ``YYYYMMDD``, ``YYYY-MM-DD``
    (``.`` and ``/`` too) or ``DD.MM.YYYY`` text or integers."""
    if isinstance(value, dt.datetime | dt.date):
        return f"{value.year:04d}{value.month:02d}{value.day:02d}"
    raw = text(value)
    if raw is None:
        return None
    if len(raw) == 8 and raw.isdigit():
        return raw if _valid_date(int(raw[:4]), int(raw[4:6]), int(raw[6:])) else None
    if (iso := _ISO_DATE.match(raw)) is not None:
        year, month, day = (int(g) for g in iso.groups())
    elif (day_first := _DAY_FIRST.match(raw)) is not None:
        day, month, year = (int(g) for g in day_first.groups())
    else:
        return None
    return f"{year:04d}{month:02d}{day:02d}" if _valid_date(year, month, day) else None


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def time(value: object) -> str | None:
    """``HHMMSS`` (with ``.FFFFFF`` when there are fractions) from a TIME or TIMESTAMP,
    or from ``HH:MM[:SS[.F]]`` or DICOM-style text."""
    if isinstance(value, dt.datetime):
        value = value.time()
    if isinstance(value, dt.time):
        fraction = f".{value.microsecond:06d}" if value.microsecond else ""
        return f"{value.hour:02d}{value.minute:02d}{value.second:02d}{fraction}"
    raw = text(value)
    if raw is None:
        return None
    if _DICOM_TIME.match(raw):
        return raw
    if (match := _TIME.match(raw)) is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    result = f"{int(hours):02d}{minutes}{seconds or ''}"
    return result + (f".{fraction}" if seconds and fraction else "")


def integer(value: object) -> int | None:
    """An integer from an integer, an integral decimal or a numeric string."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float):
        try:
            whole = int(value)
        except (ValueError, OverflowError):  # NaN, infinity
            return None
        return whole if value == whole else None
    raw = text(value)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


#: how each InstanceHeader attribute is read from its column; text otherwise
CONVERTERS: dict[str, Callable[[object], str | int | None]] = {
    "patient_birth_date": date,
    "study_date": date,
    "study_time": time,
    "series_number": integer,
    "instance_number": integer,
    "number_of_frames": integer,
    "rows": integer,
    "columns": integer,
}
