"""HL7 v2 fixtures → canonical records → FHIR R4 resources, each validated by the
independent fhir.resources models (its R4B package: R4B changed no element of Patient,
Encounter, Observation, DiagnosticReport or Bundle that is used here)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from pacsync.connectors.fhir.datatypes import FhirOptions, date_time
from pacsync.connectors.fhir.from_hl7 import (
    encounter_resource,
    fhir_resources,
    patient_resource,
    transaction_bundle,
)
from pacsync.connectors.hl7.records import parse_message
from pacsync.domain.clinical import Identifier, Patient, Precision, Timestamp, Visit

FIXTURES = Path(__file__).parents[3] / "fixtures" / "hl7"
NAMES = sorted(path.stem for path in FIXTURES.glob("*.hl7"))
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _text(name: str) -> str:
    raw = (FIXTURES / f"{name}.hl7").read_bytes()
    return raw.decode("iso8859-1" if raw.split(b"\n", 1)[0].endswith(b"8859/1") else "utf-8")


def _resources(name: str, options: FhirOptions | None = None) -> list[dict[str, Any]]:
    return fhir_resources(parse_message(_text(name)), options)


def _validated(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as the independent model reads it back (raises if it is not valid)."""
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


def _one(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["resourceType"] == kind]
    return found


@pytest.mark.parametrize("name", NAMES)
def test_every_resource_and_bundle_is_valid_fhir(name: str) -> None:
    resources = _resources(name)

    assert resources
    for resource in resources:
        assert _validated(resource)["id"] == resource["id"]
    bundle = _validated(transaction_bundle(resources))
    assert [e["request"]["method"] for e in bundle["entry"]] == ["PUT"] * len(resources)
    assert bundle["entry"][0]["request"]["url"] == f"Patient/{resources[0]['id']}"


@pytest.mark.parametrize("name", NAMES)
def test_ids_are_stable_across_processing_runs(name: str) -> None:
    assert [r["id"] for r in _resources(name)] == [r["id"] for r in _resources(name)]


def test_patient_identifiers_names_gender_and_contacts() -> None:
    patient = _one(_resources("adt_a01"), "Patient")

    mrn, ssn, medicare, account = patient["identifier"]
    assert mrn["system"] == "urn:oid:1.2.840.114350.1.13.99"
    assert mrn["value"] == "884512"
    assert mrn["type"]["coding"] == [{"system": V2_0203, "code": "MR"}]
    assert mrn["assigner"] == {"display": "GRH"}
    assert "system" not in ssn  # SSA has no OID and no configured system
    assert ssn["type"]["coding"][0]["code"] == "SS"
    assert medicare["value"] == "A77001"
    assert account["type"]["coding"][0]["code"] == "AN"
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "1962-03-14"
    official, alias = patient["name"]
    assert official == {
        "use": "official",
        "text": "Dr Siobhan Mary Brennan Jr",
        "family": "Brennan",
        "given": ["Siobhan", "Mary"],
        "prefix": ["Dr"],
        "suffix": ["Jr"],
    }
    assert "use" not in alias
    assert patient["address"][0]["line"] == ["12 Harbour Rd", "Building A & B"]
    assert patient["address"][0]["use"] == "home"
    assert patient["telecom"] == [
        {"system": "phone", "value": "+353 91 555012", "use": "home"},
        {"system": "email", "value": "siobhan.brennan@example.org"},
        {"system": "phone", "value": "+353 91 555099", "use": "work"},
    ]
    assert patient["maritalStatus"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/v2-0002"
    )
    assert patient["communication"][0]["language"]["coding"][0]["system"] == "urn:ietf:bcp:47"
    assert patient["deceasedBoolean"] is False


def test_a_configured_authority_system_names_the_identifier() -> None:
    options = FhirOptions(authority_systems={"SSA": "http://hl7.org/fhir/sid/us-ssn"})

    patient = _one(_resources("adt_a01", options), "Patient")

    assert patient["identifier"][1]["system"] == "http://hl7.org/fhir/sid/us-ssn"


def test_birth_date_keeps_its_precision_and_accents_survive() -> None:
    assert _one(_resources("adt_a08"), "Patient")["birthDate"] == "1962-03"
    patient = _one(_resources("adt_a31"), "Patient")
    assert patient["name"][0]["family"] == "Müller"
    assert patient["name"][0]["given"] == ["Zoë", "Renée"]
    assert patient["address"][0]["city"] == "München"


def test_inpatient_admission_is_an_in_progress_imp_encounter() -> None:
    resources = _resources("adt_a01")
    patient, encounter = _one(resources, "Patient"), _one(resources, "Encounter")

    assert encounter["status"] == "in-progress"
    assert encounter["class"] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "IMP",
        "display": "inpatient encounter",
    }
    assert encounter["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert encounter["identifier"][0]["value"] == "V100234"
    assert encounter["period"] == {"start": "2026-03-15T14:15:00+01:00"}
    assert encounter["location"] == [
        {"location": {"display": "4W-401-A (GRH)"}, "status": "active"}
    ]
    roles = [p["type"][0]["coding"][0]["code"] for p in encounter["participant"]]
    assert roles == ["ATND", "REF", "ADM"]
    assert encounter["participant"][0]["individual"]["display"] == "Dr Chidi Okafor"
    assert encounter["participant"][0]["individual"]["identifier"]["value"] == "1234"


def test_discharge_finishes_the_encounter_and_outpatient_is_ambulatory() -> None:
    discharged = _one(_resources("adt_a03"), "Encounter")
    outpatient = _one(_resources("adt_a04"), "Encounter")

    assert discharged["status"] == "finished"
    assert discharged["period"]["end"] == "2026-03-19T10:00:00+01:00"
    assert discharged["location"][0]["status"] == "completed"
    assert discharged["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "01"
    assert outpatient["class"]["code"] == "AMB"
    assert outpatient["period"]["start"] == "2026-04-02T09:15:00-05:00"
    # the same visit number in A01 and A03 is the same Encounter
    assert discharged["id"] == _one(_resources("adt_a01"), "Encounter")["id"]


def test_times_without_an_offset_take_the_configured_time_zone() -> None:
    stamp = Timestamp(dt.datetime(2026, 4, 10, 12, 0), Precision.MINUTE)
    oslo = FhirOptions(timezone=dt.timezone(dt.timedelta(hours=2)))

    assert date_time(stamp, FhirOptions()) == "2026-04-10T12:00:00+00:00"
    assert date_time(stamp, oslo) == "2026-04-10T12:00:00+02:00"
    assert date_time(Timestamp(dt.datetime(2026, 1, 1), Precision.YEAR), oslo) == "2026"


@pytest.mark.parametrize(
    ("patient_class", "system_end", "code"),
    [("E", "v3-ActCode", "EMER"), ("P", "v3-ActCode", "PRENC"), ("R", "v2-0004", "R")],
)
def test_encounter_class_from_pv1_2(patient_class: str, system_end: str, code: str) -> None:
    visit = Visit(patient_class, Identifier("V1", "H"), status="planned")

    encounter = _validated(encounter_resource(visit, "Patient/p1"))

    assert encounter["class"]["system"].endswith(system_end)
    assert encounter["class"]["code"] == code


@pytest.mark.parametrize(
    ("sex", "gender"),
    [("M", "male"), ("F", "female"), ("A", "other"), ("U", "unknown"), ("", None)],
)
def test_gender_from_pid_8(sex: str, gender: str | None) -> None:
    patient = _validated(
        patient_resource(Patient((Identifier("1", "H", type_code="MR"),), sex=sex))
    )

    assert patient.get("gender") == gender


def test_merge_links_survivor_and_retired_patients() -> None:
    resources = _resources("adt_a40")
    survivor, retired, second_survivor, second_retired = resources

    assert survivor["name"][0]["family"] == "Brennan"  # the PID's full patient
    assert survivor["link"] == [
        {"other": {"reference": f"Patient/{retired['id']}"}, "type": "replaces"}
    ]
    assert retired["active"] is False
    assert retired["link"] == [
        {"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}
    ]
    assert [i["value"] for i in retired["identifier"]] == ["889001", "TMP-17"]
    assert {i["use"] for i in retired["identifier"]} == {"old"}
    assert second_survivor["link"][0]["other"]["reference"] == f"Patient/{second_retired['id']}"
    # the retired patient's id is the one its own ADT messages gave it
    earlier = Patient((Identifier("889001", "GRH", type_code="MR"),))
    assert retired["id"] == patient_resource(earlier)["id"]


def _oru() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    resources = _resources("oru_r01")
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    reports = [r for r in resources if r["resourceType"] == "DiagnosticReport"]
    return observations, reports


def test_reports_reference_their_observations() -> None:
    observations, (panel, culture) = _oru()

    assert len(observations) == 11
    assert [r["reference"] for r in panel["result"]] == [
        f"Observation/{o['id']}" for o in observations[:5]
    ]
    assert len(culture["result"]) == 6
    assert (panel["status"], culture["status"]) == ("final", "preliminary")
    assert panel["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "24323-8",
        "display": "Comprehensive metabolic panel",
    }
    assert [i["type"]["coding"][0]["code"] for i in panel["identifier"]] == ["PLAC", "FILL"]
    assert panel["category"][0]["coding"][0]["code"] == "CH"
    assert panel["effectiveDateTime"] == "2026-03-16T07:15:00+01:00"
    assert panel["issued"] == "2026-03-16T09:29:00+01:00"
    assert panel["subject"] == observations[0]["subject"]
    assert panel["encounter"] == observations[0]["encounter"]


def test_numeric_observation_has_quantity_interpretation_and_range() -> None:
    glucose, _, potassium, egfr, color, *_ = _oru()[0]

    assert glucose["valueQuantity"] == {
        "value": 182,
        "unit": "milligrams per deciliter",
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL",
    }
    assert glucose["interpretation"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "code": "H",
    }
    assert glucose["referenceRange"][0]["low"]["value"] == 70
    assert glucose["referenceRange"][0]["high"]["value"] == 99
    assert glucose["status"] == "final"
    assert glucose["effectiveDateTime"] == "2026-03-16T07:15:00+01:00"
    assert potassium["status"] == "corrected"
    assert potassium["valueQuantity"]["value"] == 6.8
    assert potassium["note"] == [
        {"text": "Critical value phoned to Dr Okafor at 09:20 & read back."}
    ]
    assert egfr["valueQuantity"]["comparator"] == ">"
    assert egfr["valueQuantity"]["value"] == 60
    assert egfr["referenceRange"][0] == {
        "text": ">60",
        "low": {
            "value": 60,
            "unit": "mL/min/{1.73_m2}",
            "system": "http://unitsofmeasure.org",
            "code": "mL/min/{1.73_m2}",
        },
    }
    assert color["valueString"] == "Amber | cloudy"
    assert color["status"] == "preliminary"


def test_coded_text_date_and_ratio_observations() -> None:
    organism, gram, comment, due, period, titer = _oru()[0][5:]

    assert organism["valueCodeableConcept"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "3092008",
        "display": "Staphylococcus aureus",
    }
    assert gram["valueString"] == "Gram positive cocci in clusters\nSeen in 2 of 2 bottles"
    assert comment["valueString"] == "Comment:\nCafé au lait spots noted \\ not graded."
    assert due["valueDateTime"] == "2026-10-01"
    assert period["valueDateTime"] == "2026-01-08T10:30:00+01:00"
    assert titer["valueRatio"] == {"numerator": {"value": 1}, "denominator": {"value": 160}}
    assert titer["interpretation"][0]["coding"][0]["code"] == "A"
    # a result without its own time takes the order's observation time
    assert gram["effectiveDateTime"] == "2026-03-16T07:20:00+01:00"


def test_observation_value_types_not_in_the_fixture() -> None:
    text = (
        "MSH|^~\\&|LAB|L|PACSYNC|H|20260316093015+0100||ORU^R01|L9|P|2.5.1\r"
        "PID|1||1^^^H^MR\r"
        "OBR|1||L9|PANEL^Panel^L|||20260316\r"
        "OBX|1|SN|A^Range^L||^10^-^20|mg^^UCUM\r"
        "OBX|2|TM|B^Time^L||0930\r"
        "OBX|3|NM|C^No status^L||7\r"
        "OBX|4|SN|D^Grade^L||^2^+\r"
    )
    resources = fhir_resources(parse_message(text))
    observations = [_validated(r) for r in resources if r["resourceType"] == "Observation"]
    report = _validated(_one(resources, "DiagnosticReport"))

    assert observations[0]["valueRange"]["low"]["value"] == 10
    assert observations[0]["valueRange"]["high"]["code"] == "mg"
    assert observations[1]["valueTime"] == "09:30:00"
    assert observations[2]["status"] == "unknown"
    assert observations[3]["valueString"] == "2+"
    assert report["status"] == "unknown"
    assert report["effectiveDateTime"] == "2026-03-16"
