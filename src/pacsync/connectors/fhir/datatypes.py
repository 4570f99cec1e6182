"""FHIR R4 data types built from canonical values, as JSON-ready dicts.

Conventions of the HL7 v2-to-FHIR mapping IG: an identifier's system comes from its
assigning authority (an ISO OID → ``urn:oid:``, a URI as it is, a namespace through
:attr:`FhirOptions.authority_systems`), its type from HL7 table 0203; coding systems
named the v2 way (``LN``, ``SCT``, ``UCUM``, ``HL70078``) get their FHIR URIs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pacsync.domain.clinical import (
    Address,
    Clinician,
    Coded,
    Identifier,
    PersonName,
    Precision,
    Telecom,
    Timestamp,
)

JSON = dict[str, Any]

V2_TABLE = "http://terminology.hl7.org/CodeSystem/v2-{:04d}"
_TABLE = re.compile(r"^HL7(\d{4})$")
CODING_SYSTEMS = {
    "LN": "http://loinc.org",
    "LOINC": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "UCUM": "http://unitsofmeasure.org",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "CPT": "http://www.ama-assn.org/go/cpt",
    "C4": "http://www.ama-assn.org/go/cpt",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "NDC": "http://hl7.org/fhir/sid/ndc",
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "ISO639": "urn:ietf:bcp:47",
    "ISO 639": "urn:ietf:bcp:47",
    "CDCREC": "urn:oid:2.16.840.1.113883.6.238",
}

# HL7 table 0200 -> name-use; table 0190 -> address-use; table 0201 -> contact-point-use
_NAME_USE = {
    "L": "official",
    "D": "usual",
    "M": "maiden",
    "N": "nickname",
    "S": "anonymous",
    "TEMP": "temp",
    "BAD": "old",
    "NOUSE": "old",
}
_ADDRESS_USE = {"H": "home", "B": "work", "O": "work", "C": "temp", "BA": "old", "BDL": "old"}
_TELECOM_USE = {"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work"}
# HL7 table 0202 -> contact-point-system
_TELECOM_SYSTEM = {
    "PH": "phone",
    "CP": "phone",
    "SAT": "phone",
    "MD": "other",
    "FX": "fax",
    "BP": "pager",
    "INTERNET": "email",
    "X.400": "email",
    "TDD": "other",
    "TTY": "other",
}


@dataclass(frozen=True, slots=True)
class FhirOptions:
    """How canonical records become FHIR.

    ``authority_systems`` maps an assigning authority's namespace (``GRH``) to the
    identifier system URI the site uses for it; ``timezone`` is assumed for times sent
    without an offset (FHIR requires one on every time)."""

    authority_systems: Mapping[str, str] = field(default_factory=dict)
    timezone: dt.tzinfo = dt.UTC


def resource_id(*parts: str) -> str:
    """A stable FHIR id (64 hex characters at most) for a natural key, so re-processing a
    message updates the same resources instead of adding copies."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def identifier_key(identifier: Identifier) -> tuple[str, str]:
    return (identifier.authority_id or identifier.authority, identifier.value)


def _kept(value: Any) -> Any:
    """``value`` pruned, or None when nothing of it is left (0 and False are kept)."""
    kind = type(value)  # exact types first: this runs for every element of every resource
    if kind is str:
        return value or None
    if kind is dict or kind is list or isinstance(value, dict | list):
        return _pruned(value) or None
    return None if value is None or value == "" else value


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            kept = _kept(item)
            if kept is not None:
                out[key] = kept
        return out
    if isinstance(value, list):
        return [item for item in map(_kept, value) if item is not None]
    return value


def prune(value: JSON) -> JSON:
    """``value`` without empty strings, lists, dicts and Nones, at any depth (FHIR
    forbids empty elements)."""
    pruned: JSON = _pruned(value)
    return pruned


def number(value: Decimal) -> int | float:
    """A decimal as a JSON number."""
    return (
        int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    )


def coding_system(name: str) -> str:
    upper = name.strip().upper()
    table = _TABLE.match(upper)
    if table:
        return V2_TABLE.format(int(table.group(1)))
    return CODING_SYSTEMS.get(upper, "")


def coding(code: str, display: str, system_name: str) -> JSON:
    return {"system": coding_system(system_name), "code": code, "display": display}


def codeable(value: Coded | None) -> JSON | None:
    if value is None:
        return None
    codings = []
    if value.code:
        codings.append(coding(value.code, value.display, value.system))
    if value.alternate_code:
        codings.append(
            coding(value.alternate_code, value.alternate_display, value.alternate_system)
        )
    return prune({"coding": codings, "text": value.display or value.alternate_display})


def table_code(table: int, code: str, display: str = "") -> JSON:
    return prune({"coding": [{"system": V2_TABLE.format(table), "code": code, "display": display}]})


def identifier_system(identifier: Identifier, options: FhirOptions) -> str:
    kind = identifier.authority_id_type.upper()
    if identifier.authority_id:
        if kind == "ISO" or re.match(r"^[0-2](\.\d+)+$", identifier.authority_id):
            return f"urn:oid:{identifier.authority_id}"
        if kind == "UUID":
            return f"urn:uuid:{identifier.authority_id}"
        if kind in ("URI", "URL") or ":" in identifier.authority_id:
            return identifier.authority_id
    return options.authority_systems.get(identifier.authority, "")


def identifier(value: Identifier, options: FhirOptions, use: str = "") -> JSON:
    resource: JSON = {
        "use": use,
        "system": identifier_system(value, options),
        "value": value.value,
        "type": table_code(203, value.type_code) if value.type_code else None,
        "assigner": {"display": value.authority} if value.authority else None,
    }
    return prune(resource)


def human_name(name: PersonName) -> JSON:
    text = " ".join(p for p in (name.prefix, *name.given, name.family, name.suffix) if p)
    return prune({
        "use": _NAME_USE.get(name.use.upper(), ""),
        "text": text,
        "family": name.family,
        "given": list(name.given),
        "prefix": [name.prefix],
        "suffix": [s for s in (name.suffix, name.degree) if s],
    })  # fmt: skip


def address(value: Address) -> JSON:
    use = value.use.upper()
    return prune({
        "use": _ADDRESS_USE.get(use, ""),
        "type": "postal" if use == "M" else "",
        "line": list(value.lines),
        "city": value.city,
        "state": value.state,
        "postalCode": value.postal_code,
        "country": value.country,
    })  # fmt: skip


def contact_point(value: Telecom) -> JSON:
    equipment = value.equipment.upper()
    system = _TELECOM_SYSTEM.get(equipment, "email" if "@" in value.value else "phone")
    use = "mobile" if equipment == "CP" else _TELECOM_USE.get(value.use.upper(), "")
    return prune({"system": system, "value": value.value, "use": use})


def clinician_reference(value: Clinician) -> JSON:
    """A logical reference to a practitioner by its id, with the name to display."""
    name = human_name(value.name).get("text", "")
    reference: JSON = {"display": name or value.id}
    if value.id:
        reference["identifier"] = prune({"value": value.id, "assigner": (
            {"display": value.authority} if value.authority else None
        )})  # fmt: skip
    return reference


def _aware(value: dt.datetime, options: FhirOptions) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=options.timezone)


def date(value: Timestamp) -> str:
    """A FHIR ``date`` at the sender's precision (year, year-month or full date)."""
    if value.precision == Precision.YEAR:
        return f"{value.value.year:04d}"
    if value.precision == Precision.MONTH:
        return f"{value.value.year:04d}-{value.value.month:02d}"
    return value.value.date().isoformat()


def date_time(value: Timestamp, options: FhirOptions) -> str:
    """A FHIR ``dateTime``: a date at its precision, or a time with seconds and offset."""
    if not value.has_time:
        return date(value)
    return instant(value, options)


def instant(value: Timestamp, options: FhirOptions) -> str:
    """A FHIR ``instant``: always a full time with seconds and offset."""
    moment = _aware(value.value, options)
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
