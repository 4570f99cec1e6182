"""Canonical records of an HL7 v2 message → FHIR R4 resources as JSON-ready dicts.

ADT → Patient (+ Encounter when PV1 describes a visit); A40 → Patient.link between the
surviving patient (``replaces``) and each retired one (``replaced-by``, inactive);
ORU → Patient, Encounter, one Observation per OBX and one DiagnosticReport per OBR
listing them; SIU → Patient, Encounter and Appointment; DFT → Patient, Encounter and a
ChargeItem per charge (FT1).

Resource ids are derived from natural keys (the patient's medical record number and
its authority, the visit number, the order, appointment and transaction numbers), so
processing a message again gives the same ids: a FHIR server receiving the
:func:`transaction_bundle` (PUT by id) updates what it holds instead of adding copies.
"""

from __future__ import annotations

from pacsync.connectors.fhir.appointment import appointment_resource
from pacsync.connectors.fhir.charge_item import charge_item_resource, is_charge
from pacsync.connectors.fhir.datatypes import (
    JSON,
    FhirOptions,
    address,
    clinician_reference,
    codeable,
    contact_point,
    date,
    date_time,
    human_name,
    identifier,
    identifier_key,
    prune,
    resource_id,
    table_code,
)
from pacsync.connectors.fhir.observation import report_resources
from pacsync.domain.clinical import Identifier, Merge, ParsedMessage, Patient, Visit

# HL7 table 0001 -> administrative-gender
GENDER = {"F": "female", "M": "male", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
# HL7 table 0004 -> v3 ActCode (the IG's map); other classes keep their v2 code
ENCOUNTER_CLASS = {
    "E": ("EMER", "emergency"),
    "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "P": ("PRENC", "pre-admission"),
}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_V2_CLASSES = {"R": "Recurring patient", "B": "Obstetrics", "C": "Commercial Account"}


def _primary(identifiers: tuple[Identifier, ...]) -> Identifier:
    """The identifier a patient's resource id derives from: the MR one, else the first."""
    return next((i for i in identifiers if i.type_code == "MR"), identifiers[0])


def patient_id(identifiers: tuple[Identifier, ...]) -> str:
    return resource_id("Patient", *identifier_key(_primary(identifiers)))


def patient_resource(patient: Patient, options: FhirOptions | None = None) -> JSON:
    """PID as a Patient (v2-to-FHIR IG, segment PID → Patient)."""
    options = options or FhirOptions()
    deceased: JSON = {}
    if patient.deceased_at is not None:
        deceased["deceasedDateTime"] = date_time(patient.deceased_at, options)
    elif patient.deceased is not None:
        deceased["deceasedBoolean"] = patient.deceased
    resource: JSON = {
        "resourceType": "Patient",
        "id": patient_id(patient.identifiers),
        "identifier": [identifier(i, options) for i in patient.identifiers]
        + ([identifier(patient.account_number, options)] if patient.account_number else []),
        "active": True,
        "name": [human_name(n) for n in patient.names],
        "telecom": [contact_point(t) for t in patient.telecoms],
        "gender": GENDER.get(patient.sex, ""),
        "birthDate": date(patient.birth) if patient.birth else None,
        **deceased,
        "address": [address(a) for a in patient.addresses],
        "maritalStatus": codeable(patient.marital_status),
        "communication": [{"language": codeable(patient.language)}] if patient.language else [],
    }
    return prune(resource)


def _encounter_class(patient_class: str) -> JSON:
    if patient_class in ENCOUNTER_CLASS:
        code, display = ENCOUNTER_CLASS[patient_class]
        return {"system": ACT_CODE, "code": code, "display": display}
    code = patient_class if patient_class in _V2_CLASSES else "U"
    return {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0004",
        "code": code,
        "display": _V2_CLASSES.get(code, "Unknown"),
    }


def encounter_id(visit: Visit, patient_ref: str) -> str:
    if visit.visit_number is not None:
        return resource_id("Encounter", *identifier_key(visit.visit_number))
    admitted = visit.admitted_at.value.isoformat() if visit.admitted_at else ""
    return resource_id("Encounter", patient_ref, visit.patient_class, admitted)


def _participants(visit: Visit) -> list[JSON]:
    roles = (("ATND", visit.attending), ("REF", visit.referring), ("ADM", visit.admitting))
    return [
        {
            "type": [{"coding": [{"system": PARTICIPATION, "code": role}]}],
            "individual": clinician_reference(clinician),
        }
        for role, clinicians in roles
        for clinician in clinicians
    ]


def encounter_resource(visit: Visit, patient_ref: str, options: FhirOptions | None = None) -> JSON:
    """PV1 as an Encounter of the patient ``patient_ref`` ("Patient/<id>")."""
    options = options or FhirOptions()
    period: JSON = {
        "start": date_time(visit.admitted_at, options) if visit.admitted_at else None,
        "end": date_time(visit.discharged_at, options) if visit.discharged_at else None,
    }
    location_status = "planned" if visit.patient_class == "P" else "active"
    if visit.status == "finished":
        location_status = "completed"
    locations = [
        {"location": {"display": visit.location.label}, "status": location_status}
        if visit.location
        else None,
        {"location": {"display": visit.prior_location.label}, "status": "completed"}
        if visit.prior_location
        else None,
    ]
    resource: JSON = {
        "resourceType": "Encounter",
        "id": encounter_id(visit, patient_ref),
        "identifier": [identifier(visit.visit_number, options, use="official")]
        if visit.visit_number
        else [],
        "status": visit.status,
        "class": _encounter_class(visit.patient_class),
        "type": [table_code(7, visit.admission_type)] if visit.admission_type else [],
        "serviceType": table_code(69, visit.hospital_service) if visit.hospital_service else None,
        "subject": {"reference": patient_ref},
        "participant": _participants(visit),
        "period": period,
        "hospitalization": {
            "dischargeDisposition": table_code(112, visit.discharge_disposition)
            if visit.discharge_disposition
            else None,
        },
        "location": locations,
    }
    return prune(resource)


def merge_resources(merge: Merge, surviving: JSON | None, options: FhirOptions) -> list[JSON]:
    """A40: the surviving Patient with a ``replaces`` link per retired patient, and each
    retired Patient, inactive, ``replaced-by`` the survivor."""
    survivor_id = patient_id(merge.surviving)
    survivor = surviving or {
        "resourceType": "Patient",
        "id": survivor_id,
        "identifier": [identifier(i, options) for i in merge.surviving],
        "active": True,
    }
    retired_id = patient_id(merge.retired)
    survivor.setdefault("link", []).append(
        {"other": {"reference": f"Patient/{retired_id}"}, "type": "replaces"}
    )
    retired: JSON = {
        "resourceType": "Patient",
        "id": retired_id,
        "identifier": [identifier(i, options, use="old") for i in merge.retired],
        "active": False,
        "name": [human_name(merge.retired_name)] if merge.retired_name else [],
        "link": [{"other": {"reference": f"Patient/{survivor_id}"}, "type": "replaced-by"}],
    }
    return [survivor, prune(retired)]


def fhir_resources(message: ParsedMessage, options: FhirOptions | None = None) -> list[JSON]:
    """The FHIR resources a message's records map to, referenced ones first."""
    options = options or FhirOptions()
    resources: dict[str, JSON] = {}

    def add(resource: JSON) -> None:
        resources[f"{resource['resourceType']}/{resource['id']}"] = resource

    subject: JSON | None = None
    encounter: JSON | None = None
    if message.patient is not None:
        patient = patient_resource(message.patient, options)
        add(patient)
        subject = {"reference": f"Patient/{patient['id']}"}
        if message.visit is not None:
            visit = encounter_resource(message.visit, subject["reference"], options)
            add(visit)
            encounter = {"reference": f"Encounter/{visit['id']}"}
    if message.appointment is not None:
        add(appointment_resource(message.appointment, subject, control_id=message.control_id,
                                 options=options))  # fmt: skip
    for charge in message.charges:
        if subject is not None and is_charge(charge):
            add(charge_item_resource(charge, subject, encounter, control_id=message.control_id,
                                     options=options))  # fmt: skip
    for merge in message.merges:
        survivor = resources.get(f"Patient/{patient_id(merge.surviving)}")
        for resource in merge_resources(merge, survivor, options):
            add(resource)
    for report in message.reports:
        for resource in report_resources(
            report,
            control_id=message.control_id,
            subject=subject,
            encounter=encounter,
            options=options,
        ):
            add(resource)
    return list(resources.values())


def transaction_bundle(resources: list[JSON]) -> JSON:
    """A FHIR transaction Bundle that PUTs each resource at its id (idempotent)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }
