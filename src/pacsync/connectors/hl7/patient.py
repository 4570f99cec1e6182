"""The patient segments every message family shares: PID → :class:`Patient`,
PV1 → :class:`Visit`, MRG → :class:`Merge` (HL7 v2.5.1 chapter 3)."""

from __future__ import annotations

from pacsync.connectors.hl7.datatypes import (
    addresses,
    clinicians,
    coded,
    identifier,
    identifiers,
    location,
    person_name,
    person_names,
    telecoms,
)
from pacsync.connectors.hl7.segments import Segment
from pacsync.domain.clinical import Identifier, Merge, Patient, Telecom, Visit
from pacsync.errors import InvalidHl7Message

_DECEASED = {"Y": True, "N": False}


def _missing(where: str, what: str, hint: str) -> InvalidHl7Message:
    return InvalidHl7Message(f"{where} ({what}) is empty", location=where, hint=hint)


def read_pid(pid: Segment) -> Patient:
    """PID: identifiers (PID-3; PID-2 and PID-19 of older senders too), names, birth,
    sex, addresses, phones, language, marital status, account, death."""
    found = list(identifiers(pid, 3))
    legacy = identifier(pid.first(2))
    if legacy and all(legacy.value != i.value for i in found):
        found.append(legacy)
    ssn = pid.text(19)
    if ssn and all(ssn != i.value for i in found):
        found.append(Identifier(ssn, type_code="SS"))
    if not found:
        raise _missing(
            pid.where(3),
            "patient identifier list",
            "Every patient needs at least one identifier with its assigning authority, "
            "e.g. 12345^^^HOSP^MR.",
        )
    home = tuple(t if t.use else Telecom(t.value, "PRN", t.equipment) for t in telecoms(pid, 13))
    work = tuple(t if t.use else Telecom(t.value, "WPN", t.equipment) for t in telecoms(pid, 14))
    return Patient(
        identifiers=tuple(found),
        names=person_names(pid, 5),
        birth=pid.timestamp(7),
        sex=pid.text(8).upper(),
        addresses=addresses(pid, 11),
        telecoms=home + work,
        marital_status=coded(pid.first(16)),
        language=coded(pid.first(15)),
        account_number=identifier(pid.first(18)),
        deceased=_DECEASED.get(pid.text(30).upper(), True if pid.text(29) else None),
        deceased_at=pid.timestamp(29),
        mothers_maiden_name=person_name(pid.first(6)),
    )


def read_pv1(pv1: Segment, *, discharged: bool = False) -> Visit | None:
    """PV1, or None when it describes no visit (class N "not applicable" and no visit
    number, as A28/A31 person updates send it).  ``discharged`` is true for a discharge
    event (A03), which finishes the visit even without a discharge time."""
    patient_class = pv1.text(2).upper()
    visit_number = identifier(pv1.first(19))
    if patient_class in ("", "N") and visit_number is None:
        return None
    discharged_at = pv1.timestamp(45)
    if discharged or discharged_at is not None:
        status = "finished"
    elif patient_class == "P":
        status = "planned"
    else:
        status = "in-progress"
    return Visit(
        patient_class=patient_class,
        visit_number=visit_number,
        location=location(pv1.first(3)),
        prior_location=location(pv1.first(6)),
        admission_type=pv1.text(4),
        hospital_service=pv1.text(10),
        attending=clinicians(pv1, 7),
        referring=clinicians(pv1, 8),
        admitting=clinicians(pv1, 17),
        admitted_at=pv1.timestamp(44),
        discharged_at=discharged_at,
        discharge_disposition=pv1.text(36),
        status=status,
    )


def read_merge(pid: Segment, mrg: Segment) -> Merge:
    """One A40 pair: PID names the surviving patient, MRG-1 the one merged into it."""
    retired = identifiers(mrg, 1)
    if not retired:
        raise _missing(
            mrg.where(1),
            "prior patient identifier list",
            "A merge must name the identifier of the patient record that goes away.",
        )
    return Merge(
        surviving=read_pid(pid).identifiers,
        retired=retired,
        retired_account=identifier(mrg.first(3)),
        retired_name=person_name(mrg.first(7)),
    )
