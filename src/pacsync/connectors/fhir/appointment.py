"""SIU appointments (SCH and its AIS/AIG/AIL/AIP resources) as FHIR R4 Appointment.

The id derives from the filler appointment id (SCH-2), else the placer's (SCH-1), so
S12, S13, S14 and S15 of one appointment update one resource: booked, rescheduled,
modified, cancelled.  Each booked resource and the patient are participants; a time
with no end takes its end from the duration (FHIR asks for both or neither).
"""

from __future__ import annotations

import datetime as dt

from pacsync.connectors.fhir.datatypes import (
    JSON,
    FhirOptions,
    clinician_reference,
    codeable,
    identifier,
    instant,
    prune,
    resource_id,
)
from pacsync.domain.clinical import Appointment, AppointmentResource, Identifier, Timestamp

PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def appointment_id(appointment: Appointment, control_id: str) -> str:
    order = appointment.filler_id or appointment.placer_id
    if order is None:
        return resource_id("Appointment", control_id)
    return resource_id("Appointment", order.authority_id or order.authority, order.value)


def appointment_resource(
    appointment: Appointment,
    subject: JSON | None,
    *,
    control_id: str,
    options: FhirOptions | None = None,
) -> JSON:
    """The Appointment an SIU message describes (``subject``: its patient's reference)."""
    options = options or FhirOptions()
    start, end = _period(appointment)
    participants = [
        {"actor": subject, "required": "required", "status": "accepted"} if subject else None,
        *(_participant(resource) for resource in appointment.resources),
    ]
    if not any(participants):  # FHIR asks for one at least: the appointment's own
        participants = [{"type": [{"coding": [{"system": PARTICIPATION, "code": "PART"}]}],
                         "status": "needs-action"}]  # fmt: skip
    cancelled = appointment.status == "cancelled"
    return prune({
        "resourceType": "Appointment",
        "id": appointment_id(appointment, control_id),
        "identifier": [
            _identifier(appointment.filler_id, "FILL", options),
            _identifier(appointment.placer_id, "PLAC", options),
        ],
        "status": appointment.status,
        "cancelationReason": codeable(appointment.event_reason) if cancelled else None,
        "serviceType": [
            codeable(r.code) for r in appointment.resources if r.kind == "service" and r.code
        ],
        "appointmentType": codeable(appointment.appointment_type),
        "reasonCode": [codeable(appointment.reason)],
        "start": instant(start, options) if start and end else None,
        "end": instant(end, options) if start and end else None,
        "minutesDuration": _minutes(appointment.duration),
        "participant": [p for p in participants if p],
    })  # fmt: skip


def _identifier(value: Identifier | None, code: str, options: FhirOptions) -> JSON | None:
    if value is None:
        return None
    found = identifier(value, options)
    found["type"] = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": code,
    }]}  # fmt: skip
    return found


def _period(appointment: Appointment) -> tuple[Timestamp | None, Timestamp | None]:
    start = appointment.start or next((r.start for r in appointment.resources if r.start), None)
    end = appointment.end
    duration = appointment.duration or next(
        (r.duration for r in appointment.resources if r.duration), None
    )
    if start is not None and end is None and duration is not None and start.has_time:
        end = Timestamp(start.value + duration, start.precision)
    return start, end


def _minutes(duration: dt.timedelta | None) -> int | None:
    if duration is None or duration.total_seconds() <= 0:
        return None
    return max(1, round(duration.total_seconds() / 60))


def _participant(resource: AppointmentResource) -> JSON | None:
    actor: JSON | None = None
    if resource.clinician is not None:
        actor = clinician_reference(resource.clinician)
    elif resource.location is not None and resource.location.label:
        actor = {"display": resource.location.label}
    elif resource.code is not None and resource.kind == "resource":
        actor = {"display": resource.code.display or resource.code.code}
    if actor is None:
        return None
    return {"actor": actor, "required": "required", "status": "accepted"}


__all__ = ["appointment_id", "appointment_resource"]
