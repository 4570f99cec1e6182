"""SIU scheduling messages S12 (new booking), S13 (rescheduled), S14 (modified) and S15
(cancelled): SCH with its service (AIS), resource (AIG), location (AIL) and personnel
(AIP) groups, and the patient (PID, PV1) when sent (HL7 v2.5.1 chapter 10)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from pacsync.connectors.hl7.datatypes import clinician, coded, duration, entity, location
from pacsync.connectors.hl7.patient import read_pid, read_pv1
from pacsync.connectors.hl7.segments import Message, Segment
from pacsync.domain.clinical import (
    Appointment,
    AppointmentResource,
    ParsedMessage,
    Precision,
    Timestamp,
)
from pacsync.errors import InvalidHl7Message

SIU_EVENTS = frozenset({"S12", "S13", "S14", "S15"})

# HL7 table 0278 (filler status codes) -> appointment status
_FILLER_STATUS = {
    "BOOKED": "booked",
    "PENDING": "pending",
    "WAITLIST": "waitlist",
    "CANCELLED": "cancelled",
    "DELETED": "cancelled",
    "COMPLETE": "fulfilled",
    "NOSHOW": "noshow",
    "STARTED": "arrived",
    "DC": "cancelled",
    "OVERBOOK": "booked",
    "BLOCKED": "booked",
}

# resource segment -> (kind, start field, duration field, duration units field)
_RESOURCES = {
    "AIS": ("service", 4, 7, 8),
    "AIG": ("resource", 8, 11, 12),
    "AIL": ("location", 6, 9, 10),
    "AIP": ("personnel", 6, 9, 10),
}


def _resource(segment: Segment) -> AppointmentResource:
    kind, start, length, units = _RESOURCES[segment.name]
    return AppointmentResource(
        kind=kind,
        code=coded(segment.first(3)) if kind in ("service", "resource") else None,
        location=location(segment.first(3)) if kind == "location" else None,
        clinician=clinician(segment.first(3)) if kind == "personnel" else None,
        start=segment.timestamp(start),
        duration=duration(segment, length, units),
    )


def _status(event: str, filler_status: str) -> str:
    if event == "S15":
        return "cancelled"
    return _FILLER_STATUS.get(filler_status.upper(), "booked")


def read_SIU(message: Message, base: ParsedMessage) -> ParsedMessage:
    """The appointment, and its patient and visit when the message names them."""
    sch = message.require("SCH", base.trigger)
    placer, filler = entity(sch.first(1)), entity(sch.first(2))
    if placer is None and filler is None:
        where = sch.where(2)
        raise InvalidHl7Message(
            f"{where} and {sch.where(1)} (filler and placer appointment ids) are both empty",
            location=where,
            hint="An appointment needs the id its scheduling system gave it.",
        )
    resources = tuple(_resource(s) for s in message if s.name in _RESOURCES)
    start = sch.timestamp(11, 4) or next((r.start for r in resources if r.start), None)
    length = duration(sch, 9, 10) or next((r.duration for r in resources if r.duration), None)
    end = sch.timestamp(11, 5)
    if end is None and start is not None and length is not None:
        end = Timestamp(start.value + length, max(start.precision, Precision.MINUTE))
    filler_status = sch.text(25)
    appointment = Appointment(
        placer_id=placer,
        filler_id=filler,
        start=start,
        end=end,
        duration=length if length is not None else _between(start, end),
        reason=coded(sch.first(7)),
        appointment_type=coded(sch.first(8)),
        filler_status=filler_status,
        event_reason=coded(sch.first(6)),
        resources=resources,
        status=_status(base.event, filler_status),
    )
    pid, pv1 = message.find("PID"), message.find("PV1")
    return replace(
        base,
        appointment=appointment,
        patient=read_pid(pid) if pid else None,
        visit=read_pv1(pv1) if pv1 else None,
    )


def _between(start: Timestamp | None, end: Timestamp | None) -> dt.timedelta | None:
    if start is None or end is None:
        return None
    try:
        return end.value - start.value
    except TypeError:  # one has an offset and the other not
        return None
