"""C-FIND identifiers: query levels, return keys, matching values (wildcards, date
ranges, modality lists) and answers as keyword → value dicts; a TTL cache of answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from pacsync.errors import InvalidRequest


class Level(StrEnum):
    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


#: Keys asked for at each level when the caller does not give them.
RETURN_KEYS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                    "NumberOfPatientRelatedStudies"),
    Level.STUDY: ("StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate",
                  "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "StudyDescription",
                  "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                  "NumberOfStudyRelatedInstances"),
    Level.SERIES: ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber",
                   "SeriesDescription", "SeriesDate", "SeriesTime",
                   "NumberOfSeriesRelatedInstances"),
    Level.IMAGE: ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
                  "InstanceNumber"),
}  # fmt: skip

#: Keys a caller must give below the study level (the hierarchy above the level).
_UNIQUE_ABOVE = {Level.SERIES: ("StudyInstanceUID",),
                 Level.IMAGE: ("StudyInstanceUID", "SeriesInstanceUID")}  # fmt: skip
_LEFT_OUT = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet"})


def level_of(value: str) -> Level:
    try:
        return Level(value.upper())
    except ValueError:
        raise InvalidRequest(
            f"unknown query level {value!r}",
            hint=f"Use one of: {', '.join(level.value.lower() for level in Level)}.",
        ) from None


def date_range(start: str | None, end: str | None) -> str:
    """A DA range matching value: ``20240101-20240131``, ``20240101-``, ``-20240131``
    (dates given as YYYYMMDD or YYYY-MM-DD); ``""`` when neither is given."""
    first, last = _date(start), _date(end)
    if not first and not last:
        return ""
    if first == last:
        return first
    return f"{first}-{last}"


def _date(value: str | None) -> str:
    if not value:
        return ""
    digits = value.replace("-", "").replace(".", "")
    if len(digits) != 8 or not digits.isdigit():
        raise InvalidRequest(
            f"invalid date {value!r}", hint="Give dates as YYYYMMDD or YYYY-MM-DD."
        )
    return digits


def value_list(values: Iterable[str]) -> str:
    """A list of matching values (``CT\\MR``): any of them matches."""
    return "\\".join(v.strip().upper() for v in values if v.strip())


def identifier(level: Level, keys: Mapping[str, str]) -> Dataset:
    """The C-FIND identifier: the level's return keys plus ``keys`` (keyword → matching
    value; ``""`` asks for the attribute without matching on it)."""
    for needed in _UNIQUE_ABOVE.get(level, ()):
        if not keys.get(needed):
            raise InvalidRequest(
                f"a {level.value.lower()} query needs {needed}",
                hint="Find the study (and series) first, then query below it.",
            )
    ds = Dataset()
    ds.QueryRetrieveLevel = level.value
    for keyword in (*RETURN_KEYS[level], *keys):
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise InvalidRequest(
                f"unknown DICOM keyword {keyword!r}",
                hint="Use attribute keywords such as PatientID, StudyDate, Modality.",
            )
        setattr(ds, keyword, keys.get(keyword, ""))
    if any(not str(v).isascii() for v in keys.values()):
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def answer(ds: Dataset) -> dict[str, str]:
    """A C-FIND answer as keyword → value (multiple values joined with ``\\``)."""
    found: dict[str, str] = {}
    for element in ds:
        keyword = element.keyword
        if not keyword or keyword in _LEFT_OUT or element.VR == "SQ":
            continue
        value = element.value
        if value is None:
            found[keyword] = ""
        elif isinstance(value, MultiValue | list):
            found[keyword] = "\\".join(str(v) for v in value)
        else:
            found[keyword] = str(value)
    return found


class QueryCache:
    """Answers kept for a time per (node, level, keys); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, ...], tuple[float, list[dict[str, str]]]] = {}

    @staticmethod
    def key(node: str, level: Level, keys: Mapping[str, str], limit: int) -> tuple[str, ...]:
        return (node, level.value, str(limit), *sorted(f"{k}={v}" for k, v in keys.items()))

    def get(self, key: tuple[str, ...]) -> list[dict[str, str]] | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            if kept[0] < time.monotonic():
                del self._kept[key]
                return None
            return [dict(a) for a in kept[1]]

    def put(self, key: tuple[str, ...], answers: list[dict[str, str]], ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        with self._lock:
            self._kept[key] = (time.monotonic() + ttl_s, [dict(a) for a in answers])

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
