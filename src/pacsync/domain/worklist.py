"""Scheduled procedure steps (the Modality Worklist, PS3.4 Annex K) and how a worklist
query matches them.

A :class:`NewProcedure` is what a person, the API or an order feed asks to schedule,
checked against the value representations the modality will read (AccessionNumber
SH ≤ 16, PatientID LO ≤ 64, Modality CS, ScheduledStationAETitle an AE title, a UID
for StudyInstanceUID).  A :class:`ScheduledProcedure` is one stored, with its id and
status.

:func:`matches` applies a worklist query given as attribute keyword → matching value
(PS3.4 C.2.2.2): universal matching for an empty value; ``*`` and ``?`` wild cards;
names (PN) compared with case and accents ignored; date and time ranges
(``20261124-20261125``, ``-20261124``, ``0800-1200``); a list of UIDs for
StudyInstanceUID.  Keys this worklist does not hold match everything (they are
returned empty)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pacsync.domain.dicom_node import AE_TITLE
from pacsync.domain.imaging import fold
from pacsync.domain.matching import date_range, uid_list
from pacsync.errors import InvalidRequest


class ProcedureStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


#: attributes of the Scheduled Procedure Step Sequence item (the rest are top level)
STEP_KEYS = frozenset({
    "ScheduledStationAETitle", "ScheduledStationName", "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime", "Modality", "ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepDescription", "ScheduledProcedureStepID",
    "ScheduledProcedureStepStatus",
})  # fmt: skip
NAMES = frozenset({"PatientName", "ReferringPhysicianName", "ScheduledPerformingPhysicianName"})
DATES = frozenset({"ScheduledProcedureStepStartDate", "PatientBirthDate"})
TIMES = frozenset({"ScheduledProcedureStepStartTime"})
UIDS = frozenset({"StudyInstanceUID"})

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_CODE = re.compile(r"^[A-Z0-9_ ]{1,16}$")
_DA = re.compile(r"^\d{8}$")
_DT = re.compile(r"^\d{8}(\d{4}(\d{2})?)?$")
_TIME = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")


class NewProcedure(BaseModel):
    """A procedure step to schedule (see the module docstring for the checks)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    accession_number: str = Field(min_length=1, max_length=16)
    patient_id: str = Field(min_length=1, max_length=64)
    patient_name: str = Field(min_length=1, max_length=194)
    modality: str
    station_ae: str
    start: dt.datetime
    study_uid: str | None = None
    patient_birth_date: str = ""
    patient_sex: str = ""
    requested_procedure_id: str = Field("", max_length=16)
    requested_procedure_description: str = Field("", max_length=64)
    step_id: str = Field("", max_length=16)
    step_description: str = Field("", max_length=64)
    station_name: str = Field("", max_length=16)
    referring_physician: str = Field("", max_length=194)
    performing_physician: str = Field("", max_length=194)

    @field_validator("modality")
    @classmethod
    def _modality(cls, value: str) -> str:
        if not _CODE.match(value.upper()):
            raise ValueError("a modality code such as CT, MR, US or DX")
        return value.upper()

    @field_validator("station_ae")
    @classmethod
    def _station(cls, value: str) -> str:
        if not AE_TITLE.match(value):
            raise ValueError("an AE title: 1 to 16 printable characters without '\\'")
        return value

    @field_validator("study_uid")
    @classmethod
    def _uid(cls, value: str | None) -> str | None:
        if value and (len(value) > 64 or not _UID.match(value)):
            raise ValueError("a UID: digits and dots, at most 64 characters (e.g. 2.25.1234)")
        return value or None

    @field_validator("patient_birth_date")
    @classmethod
    def _birth(cls, value: str) -> str:
        if value and not _DA.match(value.replace("-", "")):
            raise ValueError("a date: YYYYMMDD or YYYY-MM-DD")
        return value.replace("-", "")

    @field_validator("patient_sex")
    @classmethod
    def _sex(cls, value: str) -> str:
        if value.upper() not in ("", "M", "F", "O"):
            raise ValueError("M, F or O")
        return value.upper()

    @field_validator("start", mode="before")
    @classmethod
    def _dicom_start(cls, value: Any) -> Any:
        """A DICOM date-time (``202611240930``) as well as an ISO one; a bare number is
        never read as a Unix timestamp."""
        if isinstance(value, str) and _DT.match(value.strip()):
            text = value.strip()
            return dt.datetime.strptime(text + "000000"[: 14 - len(text)], "%Y%m%d%H%M%S")
        if isinstance(value, int | float):
            raise ValueError("a date and time such as 2026-11-24T09:30")
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: dt.datetime) -> dt.datetime:
        return value.replace(tzinfo=None, microsecond=0)  # DICOM DA/TM: the local clock

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> NewProcedure:
        """A checked procedure; :class:`InvalidRequest` naming each wrong field."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as error:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
            )
            raise InvalidRequest(
                f"procedure not scheduled: {detail}",
                hint="Give accession_number, patient_id, patient_name, modality, station_ae "
                "and start (YYYY-MM-DDTHH:MM); the message names the field that is wrong.",
            ) from None

    def with_defaults(self) -> NewProcedure:
        """Requested procedure and step IDs default to the accession number (one step
        per order, as most RIS send them)."""
        return self.model_copy(
            update={
                "requested_procedure_id": self.requested_procedure_id or self.accession_number,
                "step_id": self.step_id or self.accession_number,
            }
        )


@dataclass(frozen=True, slots=True)
class ScheduledProcedure:
    """A stored procedure step."""

    id: int
    procedure: NewProcedure
    status: ProcedureStatus
    source: str  # who scheduled it: cli, api, an order feed
    created_at: dt.datetime

    def attributes(self) -> dict[str, str]:
        """Its worklist attributes by keyword, as DICOM strings."""
        p = self.procedure
        return {
            "AccessionNumber": p.accession_number,
            "PatientID": p.patient_id,
            "PatientName": p.patient_name,
            "PatientBirthDate": p.patient_birth_date,
            "PatientSex": p.patient_sex,
            "StudyInstanceUID": p.study_uid or "",
            "RequestedProcedureID": p.requested_procedure_id,
            "RequestedProcedureDescription": p.requested_procedure_description,
            "ReferringPhysicianName": p.referring_physician,
            "ScheduledStationAETitle": p.station_ae,
            "ScheduledStationName": p.station_name,
            "ScheduledProcedureStepStartDate": p.start.strftime("%Y%m%d"),
            "ScheduledProcedureStepStartTime": p.start.strftime("%H%M%S"),
            "Modality": p.modality,
            "ScheduledPerformingPhysicianName": p.performing_physician,
            "ScheduledProcedureStepDescription": p.step_description,
            "ScheduledProcedureStepID": p.step_id,
            "ScheduledProcedureStepStatus": self.status.value.upper(),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "source": self.source,
            "created_at": self.created_at,
            **self.procedure.model_dump(),
        }


# -- matching ---------------------------------------------------------------------------------


def matches(procedure: ScheduledProcedure, keys: Mapping[str, str]) -> bool:
    """Whether ``procedure`` matches every key of a worklist query."""
    held = procedure.attributes()
    for keyword, wanted in keys.items():
        if not wanted or wanted == "*" or keyword not in held:
            continue
        if not value_matches(keyword, held[keyword], wanted):
            return False
    return True


def value_matches(keyword: str, value: str, wanted: str) -> bool:
    """One attribute's value against its matching value."""
    if keyword in UIDS:
        return value in uid_list(wanted)
    if keyword in DATES:
        low, high = date_range(wanted, keyword)
        return bool(value) and (low or value) <= value <= (high or value)
    if keyword in TIMES:
        return _time_matches(value, wanted)
    if keyword in NAMES:
        return wildcard(fold(wanted)).fullmatch(fold(value)) is not None
    return wildcard(wanted).fullmatch(value) is not None


def wildcard(wanted: str) -> re.Pattern[str]:
    """A matching value with ``*`` and ``?`` as a regular expression."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in wanted]
    return re.compile("".join(parts), re.DOTALL)


def _time(value: str, keyword: str, *, end: bool) -> str:
    """HHMMSS of a TM (``0930``, ``09:30``, ``093000.5``); an open end of a range is
    padded to the start or the end of its hour or minute."""
    text = value.strip().replace(":", "")
    found = _TIME.match(text)
    if not found:
        raise InvalidRequest(
            f"invalid {keyword} {value!r}", hint="Use HHMM or HHMMSS, or a range 0800-1200."
        )
    hours, minutes, seconds = found.group(1), found.group(2), found.group(3)
    filler = "59" if end else "00"
    return f"{hours}{minutes or filler}{seconds or filler}"


def _time_matches(value: str, wanted: str) -> bool:
    if "-" in wanted:
        low, _, high = wanted.partition("-")
        if not low.strip() and not high.strip():
            raise InvalidRequest(f"invalid time range {wanted!r}", hint="Give at least one end.")
        start = _time(low, "time", end=False) if low.strip() else "000000"
        stop = _time(high, "time", end=True) if high.strip() else "235959"
        return start <= value[:6] <= stop
    return _time(wanted, "time", end=False) <= value[:6] <= _time(wanted, "time", end=True)
