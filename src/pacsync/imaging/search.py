"""What a search of the archive index asks: a level, DICOM matching keys, which
archives, and a page.  The same query serves the CLI, the REST API and QIDO-RS.

Keys are DICOM keywords (``PatientName``) or tags (``00100010``); an unknown key
is an error that lists the valid ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pacsync.errors import InvalidRequest

Level = Literal["study", "series", "instance"]
LEVELS: tuple[Level, ...] = ("study", "series", "instance")
MAX_LIMIT = 1000
MAX_OFFSET = 10_000_000

# keyword → (tag, VR, matching kind) of every key a query may use, per level
STUDY_KEYS: dict[str, tuple[str, str, str]] = {
    "PatientName": ("00100010", "PN", "name"),
    "PatientID": ("00100020", "LO", "text"),
    "IssuerOfPatientID": ("00100021", "LO", "text"),
    "PatientBirthDate": ("00100030", "DA", "date"),
    "PatientSex": ("00100040", "CS", "text"),
    "StudyDate": ("00080020", "DA", "date"),
    "StudyTime": ("00080030", "TM", "text"),
    "AccessionNumber": ("00080050", "SH", "text"),
    "ModalitiesInStudy": ("00080061", "CS", "modality"),
    "ReferringPhysicianName": ("00080090", "PN", "name"),
    "StudyDescription": ("00081030", "LO", "text"),
    "StudyInstanceUID": ("0020000D", "UI", "uid"),
    "StudyID": ("00200010", "SH", "text"),
}
SERIES_KEYS: dict[str, tuple[str, str, str]] = {
    "Modality": ("00080060", "CS", "text"),
    "SeriesDescription": ("0008103E", "LO", "text"),
    "BodyPartExamined": ("00180015", "CS", "text"),
    "SeriesDate": ("00080021", "DA", "date"),
    "SeriesTime": ("00080031", "TM", "text"),
    "SeriesInstanceUID": ("0020000E", "UI", "uid"),
    "SeriesNumber": ("00200011", "IS", "int"),
}
INSTANCE_KEYS: dict[str, tuple[str, str, str]] = {
    "SOPClassUID": ("00080016", "UI", "uid"),
    "SOPInstanceUID": ("00080018", "UI", "uid"),
    "InstanceNumber": ("00200013", "IS", "int"),
}
# attributes results carry that are not matching keys
RESULT_KEYS: dict[str, tuple[str, str]] = {
    "NumberOfStudyRelatedSeries": ("00201206", "IS"),
    "NumberOfStudyRelatedInstances": ("00201208", "IS"),
    "NumberOfSeriesRelatedInstances": ("00201209", "IS"),
    "NumberOfFrames": ("00280008", "IS"),
    "Rows": ("00280010", "US"),
    "Columns": ("00280011", "US"),
    "SpecificCharacterSet": ("00080005", "CS"),
    "TransferSyntaxUID": ("00020010", "UI"),
}


def keys_of(level: Level) -> dict[str, tuple[str, str, str]]:
    keys = dict(STUDY_KEYS)
    if level in ("series", "instance"):
        keys |= SERIES_KEYS
    if level == "instance":
        keys |= INSTANCE_KEYS
    return keys


def keyword_of(key: str, level: Level) -> str:
    """The keyword a query parameter names (keyword or 8-digit hex tag)."""
    keys = keys_of(level)
    if key in keys:
        return key
    upper = key.upper()
    for keyword, (tag, _, _) in keys.items():
        if tag == upper:
            return keyword
    raise InvalidRequest(
        f"{key!r} is not a matching key at the {level} level",
        hint="Match on: " + ", ".join(sorted(keys)) + ".",
    )


@dataclass(frozen=True, slots=True)
class Query:
    level: Level = "study"
    match: dict[str, str] = field(default_factory=dict)  # keyword → DICOM matching value
    archives: tuple[str, ...] = ()  # empty: every archive
    limit: int = 100
    offset: int = 0

    @classmethod
    def build(
        cls,
        level: str,
        match: Mapping[str, str],
        *,
        archives: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> Query:
        if level not in LEVELS:
            raise InvalidRequest(f"unknown level {level!r}", hint="Use study, series or instance.")
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit {limit} is out of range", hint=f"Use 1 to {MAX_LIMIT}.")
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidRequest(
                f"offset {offset} is out of range", hint=f"Use 0 to {MAX_OFFSET:,}."
            )
        checked: Level = level
        keys = {keyword_of(k, checked): v for k, v in match.items() if v not in ("", "*")}
        return cls(checked, keys, tuple(archives), limit, offset)


class IndexSearch(Protocol):
    def search(self, query: Query) -> list[dict[str, Any]]:
        """Matching rows keyed by DICOM keyword, plus ``archive`` (where each lives) and,
        for instances, ``path`` (the file, relative to its archive's root)."""
        ...
