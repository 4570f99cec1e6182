"""HL7 v2 date and time values (DTM, DT, TM; the first component of TS).

``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``: the sender may stop at any part,
and the precision it stopped at is kept.  Without an offset a value is in the sender's
time zone, which the message header's own offset (MSH-7) tells when it is given.
"""

from __future__ import annotations

import datetime as dt
import re

from pacsync.domain.clinical import Precision, Timestamp

FORMAT = "YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]"
TIME_FORMAT = "HH[MM[SS[.S+]]][+/-ZZZZ]"

_DTM = re.compile(
    r"^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?"
    r"([+-]\d{4})?$"
)
_TM = re.compile(r"^(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?([+-]\d{4})?$")
_PRECISIONS = (
    Precision.YEAR,
    Precision.MONTH,
    Precision.DAY,
    Precision.HOUR,
    Precision.MINUTE,
    Precision.SECOND,
)


def offset(text: str) -> dt.timezone:
    """``+HHMM`` / ``-HHMM`` as a time zone (HL7 allows -1200 … +1400)."""
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[3:5])
    if minutes >= 60 or hours > 14:
        raise ValueError(f"offset {text} is not a UTC offset")
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def header_offset(text: str) -> dt.timezone | None:
    """The offset MSH-7 carries, if it is a readable DTM with one."""
    match = _DTM.match(text.strip())
    if not match or not match.group(8):
        return None
    try:
        return offset(match.group(8))
    except ValueError:
        return None


def parse_dtm(text: str, default_tz: dt.tzinfo | None = None) -> Timestamp:
    """A DTM value; ``ValueError`` when it does not follow :data:`FORMAT` or names a
    day or time that does not exist."""
    match = _DTM.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} does not follow {FORMAT}")
    parts = match.groups()
    given = sum(1 for part in parts[:6] if part is not None)
    year, month, day, hour, minute, second = (int(p) if p else 0 for p in parts[:6])
    fraction = parts[6] or ""
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    try:
        tz = offset(parts[7]) if parts[7] else default_tz
        value = dt.datetime(year, month or 1, day or 1, hour, minute, second, micro, tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a real date and time ({exc}); {FORMAT}") from exc
    return Timestamp(value, _PRECISIONS[given - 1])


def parse_tm(text: str) -> dt.time:
    """A TM value; ``ValueError`` when it does not follow :data:`TIME_FORMAT`."""
    match = _TM.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} does not follow {TIME_FORMAT}")
    hour, minute, second, fraction, zone = match.groups()
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    try:
        zone_info = offset(zone) if zone else None
        return dt.time(int(hour), int(minute or 0), int(second or 0), micro, tzinfo=zone_info)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a real time ({exc}); {TIME_FORMAT}") from exc
