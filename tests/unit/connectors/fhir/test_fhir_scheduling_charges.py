"""SIU → FHIR Appointment and DFT → FHIR ChargeItem, each read back by the independent
fhir.resources models: the appointment and charge records a practice-management feed
sends are kept, not only its patients and visits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from pacsync.connectors.fhir.from_hl7 import fhir_resources
from pacsync.connectors.hl7.records import parse_message

FIXTURES = Path(__file__).parents[3] / "fixtures" / "hl7"


def _resources(name: str, text: str | None = None) -> list[dict[str, Any]]:
    raw = text or (FIXTURES / f"{name}.hl7").read_bytes().decode("latin-1")
    return fhir_resources(parse_message(raw))


def _of(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    found = [r for r in resources if r["resourceType"] == kind]
    for resource in found:
        get_fhir_model_class(kind).model_validate(resource)
    return found


def test_a_booked_appointment_with_its_time_participants_and_reason() -> None:
    resources = _resources("siu_s12")
    (appointment,) = _of(resources, "Appointment")
    (patient,) = _of(resources, "Patient")
    assert appointment["status"] == "booked"
    assert [(i["value"], i["type"]["coding"][0]["code"]) for i in appointment["identifier"]] == [
        ("APT-31877", "FILL"),
        ("PL-9001", "PLAC"),
    ]
    assert (appointment["start"], appointment["end"]) == (
        "2026-04-12T14:00:00-05:00",
        "2026-04-12T14:20:00-05:00",
    )
    assert appointment["minutesDuration"] == 20
    assert appointment["serviceType"][0]["coding"][0]["code"] == "99213"
    assert appointment["reasonCode"][0]["coding"][0]["code"] == "ROUTINE"
    actors = [p["actor"] for p in appointment["participant"]]
    assert actors[0] == {"reference": f"Patient/{patient['id']}"}
    assert {"display": "ECG cart 2"} in actors
    assert any(a.get("identifier", {}).get("value") == "3311" for a in actors)  # AIP
    assert any("EXAM2" in a.get("display", "") for a in actors)  # AIL


def test_every_event_of_one_appointment_updates_the_same_resource() -> None:
    ids = {}
    for name in ("siu_s12", "siu_s13", "siu_s14", "siu_s15"):
        (appointment,) = _of(_resources(name), "Appointment")
        ids[name] = (appointment["id"], appointment["status"])
    assert len({i for i, _ in ids.values()}) == 1
    assert ids["siu_s15"][1] == "cancelled"
    (cancelled,) = _of(_resources("siu_s15"), "Appointment")
    assert cancelled["cancelationReason"]["coding"][0]["code"] == "CANC"


def test_an_end_is_taken_from_the_duration_and_none_without_a_start() -> None:
    text = (FIXTURES / "siu_s12.hl7").read_bytes().decode("latin-1")
    no_start = text.replace("^^^20260412140000-0500^20260412142000-0500", "").replace(
        "20260412140000-0500", ""
    )
    (appointment,) = _of(_resources("", no_start), "Appointment")
    assert "start" not in appointment
    assert "end" not in appointment  # FHIR: both or neither


def test_each_charge_is_a_charge_item_of_the_patient_and_visit() -> None:
    resources = _resources("dft_p03")
    first, second = _of(resources, "ChargeItem")
    (patient,) = _of(resources, "Patient")
    (encounter,) = _of(resources, "Encounter")
    assert first["identifier"] == [{"value": "TX-88001"}]
    assert first["status"] == "billable"
    assert first["code"]["coding"][0]["code"] == "99213"
    assert first["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert first["context"] == {"reference": f"Encounter/{encounter['id']}"}
    assert first["priceOverride"] == {"value": 125.0, "currency": "USD"}
    assert first["quantity"] == {"value": 1}
    assert first["occurrenceDateTime"] == "2026-04-02T09:15:00-05:00"
    assert first["enteredDate"] == "2026-04-02T10:30:00-05:00"
    assert first["costCenter"] == {"display": "Cardiology"}
    assert first["performer"][0]["actor"]["identifier"]["value"] == "3311"
    assert [r["coding"][0]["code"] for r in second["reason"]] == ["I10", "R00.2"]
    assert first["id"] != second["id"]
    assert [r["id"] for r in _of(_resources("dft_p03"), "ChargeItem")] == [
        first["id"],
        second["id"],
    ]  # posted again: the same resources


def test_a_payment_or_credit_is_not_a_charge_item() -> None:
    text = (FIXTURES / "dft_p03.hl7").read_bytes().decode("latin-1")
    credited = text.replace("|20260402103000-0500|CG|93000", "|20260402103000-0500|CD|93000")
    assert credited != text
    (charge,) = _of(_resources("", credited), "ChargeItem")
    assert charge["identifier"] == [{"value": "TX-88001"}]
