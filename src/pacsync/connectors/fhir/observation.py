"""ORU results as FHIR R4 Observation and DiagnosticReport resources (HL7 v2-to-FHIR
IG: OBX → Observation, OBR → DiagnosticReport).

Observation.value[x] follows OBX-2 (NM → Quantity, SN → Quantity with a comparator,
Ratio or Range, CE/CWE/CNE → CodeableConcept, ST/TX/FT → string, DT/TS/DTM → dateTime,
TM → time); interpretation comes from OBX-8, referenceRange from OBX-7 (``low-high``,
``>low``, ``<high``, else its text), status from OBX-11 and OBR-25.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from pacsync.connectors.fhir.datatypes import (
    JSON,
    FhirOptions,
    clinician_reference,
    codeable,
    coding_system,
    date_time,
    identifier,
    instant,
    number,
    prune,
    resource_id,
)
from pacsync.domain.clinical import (
    Coded,
    Identifier,
    Observation,
    Report,
    StructuredNumeric,
    Timestamp,
)

# HL7 table 0085 -> observation-status (the IG's map, and the nearest status for the
# codes it leaves unmapped: R, S → preliminary; I, O → registered; B → amended;
# U, V → final; N → cancelled)
OBSERVATION_STATUS = {
    "A": "amended",
    "C": "corrected",
    "D": "entered-in-error",
    "F": "final",
    "P": "preliminary",
    "X": "cancelled",
    "W": "entered-in-error",
    "R": "preliminary",
    "S": "preliminary",
    "I": "registered",
    "O": "registered",
    "B": "amended",
    "U": "final",
    "V": "final",
    "N": "cancelled",
}
# HL7 table 0123 -> diagnostic-report-status (IG; A → partial)
REPORT_STATUS = {
    "O": "registered",
    "I": "registered",
    "S": "registered",
    "P": "preliminary",
    "C": "corrected",
    "R": "partial",
    "F": "final",
    "X": "cancelled",
    "A": "partial",
}
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_V3_INTERPRETATIONS = frozenset({
    "<", ">", "A", "AA", "B", "D", "H", "HH", "HU", "HX", "I", "IE", "L", "LL", "LU", "LX",
    "N", "NEG", "NR", "POS", "R", "S", "SDD", "SYN-R", "SYN-S", "U", "W",
})  # fmt: skip
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")
_BOUND = re.compile(r"^\s*([<>]=?)\s*(-?\d+(?:\.\d+)?)\s*$")
_COMPARATORS = frozenset({"<", ">", "<=", ">="})
TEXT_TYPES = frozenset({"ST", "TX", "FT"})


def _quantity(value: Decimal | None, units: Coded | None) -> JSON:
    quantity: JSON = {"value": number(value) if value is not None else None}
    if units is not None:
        quantity["unit"] = units.display or units.code
        system = coding_system(units.system)
        if system:
            quantity["system"] = system
            quantity["code"] = units.code
    return prune(quantity)


def _structured(value: StructuredNumeric, units: Coded | None) -> JSON:
    if value.separator in (":", "/") and value.number is not None:
        return {"valueRatio": {
            "numerator": _quantity(value.number, None),
            "denominator": _quantity(value.second_number, None),
        }}  # fmt: skip
    if value.separator == "-" and value.number is not None:
        return {"valueRange": {
            "low": _quantity(value.number, units),
            "high": _quantity(value.second_number, units),
        }}  # fmt: skip
    if not value.separator and value.comparator in ("", "=", *_COMPARATORS):
        quantity = _quantity(value.number, units)
        if value.comparator in _COMPARATORS:
            quantity["comparator"] = value.comparator
        return {"valueQuantity": quantity}
    text = f"{value.comparator}{value.number or ''}{value.separator}{value.second_number or ''}"
    return {"valueString": text}


def _value(observation: Observation, options: FhirOptions) -> JSON:
    values = observation.values
    if not values:
        return {}
    first: Any = values[0]
    kind = observation.value_type
    if kind in TEXT_TYPES or isinstance(first, str):
        return {"valueString": "\n".join(str(v) for v in values)}
    if isinstance(first, Decimal):
        return {"valueQuantity": _quantity(first, observation.units)}
    if isinstance(first, Coded):
        return {"valueCodeableConcept": codeable(first)}
    if isinstance(first, StructuredNumeric):
        return _structured(first, observation.units)
    if isinstance(first, Timestamp):
        return {"valueDateTime": date_time(first, options)}
    if isinstance(first, dt.time):
        return {"valueTime": first.replace(tzinfo=None).isoformat(timespec="seconds")}
    return {}  # pragma: no cover - every ObservationValue is handled above


def _reference_range(observation: Observation) -> list[JSON]:
    text = observation.reference_range
    if not text:
        return []
    rng: JSON = {"text": text}
    both, bound = _RANGE.match(text), _BOUND.match(text)
    if both:
        rng["low"] = _quantity(Decimal(both.group(1)), observation.units)
        rng["high"] = _quantity(Decimal(both.group(2)), observation.units)
    elif bound:
        side = "low" if bound.group(1).startswith(">") else "high"
        rng[side] = _quantity(Decimal(bound.group(2)), observation.units)
    return [rng]


def _interpretation(flag: str) -> JSON:
    system = INTERPRETATION if flag in _V3_INTERPRETATIONS else coding_system("HL70078")
    return {"coding": [{"system": system, "code": flag}]}


def report_key(report: Report, control_id: str) -> tuple[str, ...]:
    """The natural key of an order's report: its filler order number, else its placer
    order number, else the message and the OBR's set id."""
    order = report.filler_order or report.placer_order
    if order is not None:
        return ("DiagnosticReport", order.authority_id or order.authority, order.value)
    return ("DiagnosticReport", control_id, str(report.set_id or 0))


def _order_identifier(order: Identifier | None, code: str, options: FhirOptions) -> JSON | None:
    if order is None:
        return None
    found = identifier(order, options)
    found["type"] = {"coding": [{"system": coding_system("HL70203"), "code": code}]}
    return found


def observation_resource(
    observation: Observation,
    report: Report,
    *,
    report_id: str,
    subject: JSON | None,
    encounter: JSON | None,
    options: FhirOptions,
) -> JSON:
    """One OBX as an Observation (its id derives from the report's and the OBX's)."""
    effective = observation.effective or report.observed_at
    resource: JSON = {
        "resourceType": "Observation",
        "id": resource_id(
            "Observation",
            report_id,
            str(observation.set_id or 0),
            observation.sub_id,
            observation.code.code,
        ),
        "status": OBSERVATION_STATUS.get(observation.status, "unknown"),
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory",
        }]}] if report.diagnostic_service in ("LAB", "CH", "HM", "MB", "SR", "BLB") else [],
        "code": codeable(observation.code),
        "subject": subject,
        "encounter": encounter,
        "effectiveDateTime": date_time(effective, options) if effective else None,
        "issued": instant(report.reported_at, options) if report.reported_at else None,
        "performer": [clinician_reference(c) for c in observation.responsible],
        **_value(observation, options),
        "interpretation": [_interpretation(flag) for flag in observation.abnormal_flags],
        "note": [{"text": note} for note in observation.notes if note],
        "method": codeable(observation.method),
        "referenceRange": _reference_range(observation),
    }  # fmt: skip
    return prune(resource)


def report_resources(
    report: Report,
    *,
    control_id: str,
    subject: JSON | None,
    encounter: JSON | None,
    options: FhirOptions,
) -> list[JSON]:
    """The Observations of one order and the DiagnosticReport that lists them (last)."""
    report_id = resource_id(*report_key(report, control_id))
    observations = [
        observation_resource(
            o, report, report_id=report_id, subject=subject, encounter=encounter, options=options
        )
        for o in report.observations
    ]
    effective: JSON = {}
    if report.observed_at and report.observed_end:
        effective["effectivePeriod"] = {
            "start": date_time(report.observed_at, options),
            "end": date_time(report.observed_end, options),
        }
    elif report.observed_at:
        effective["effectiveDateTime"] = date_time(report.observed_at, options)
    diagnostic: JSON = {
        "resourceType": "DiagnosticReport",
        "id": report_id,
        "identifier": [
            _order_identifier(report.placer_order, "PLAC", options),
            _order_identifier(report.filler_order, "FILL", options),
        ],
        "status": REPORT_STATUS.get(report.status, "unknown"),
        "category": [{"coding": [{
            "system": coding_system("HL70074"), "code": report.diagnostic_service,
        }]}] if report.diagnostic_service else [],
        "code": codeable(report.service),
        "subject": subject,
        "encounter": encounter,
        **effective,
        "issued": instant(report.reported_at, options) if report.reported_at else None,
        "result": [{"reference": f"Observation/{o['id']}"} for o in observations],
    }  # fmt: skip
    return [*observations, prune(diagnostic)]
