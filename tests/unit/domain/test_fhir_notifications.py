"""What an inbound FHIR notification names, in each shape a server or vendor sends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pacsync.domain.fhir_notifications import (
    MAX_TARGETS,
    Notification,
    patient_of,
    read_notification,
    reference_parts,
)
from pacsync.errors import InvalidRequest

BASE = "http://ehr.example.org/fhir"


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def backport(kind: str, *events: dict[str, Any], resources: tuple[Any, ...] = ()) -> bytes:
    """An R4 Subscriptions Backport notification, as sekmet-fhir and the reference
    implementations send it."""
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{BASE}/Subscription/s1"}},
        {"name": "type", "valueCode": kind},
    ]
    for event in events:
        parts: list[dict[str, Any]] = [{"name": "event-number", "valueString": "1"}]
        if "focus" in event:
            parts.append({"name": "focus", "valueReference": {"reference": event["focus"]}})
        parts += [
            {"name": "additional-context", "valueReference": {"reference": c}}
            for c in event.get("context", [])
        ]
        parameters.append({"name": "notification-event", "part": parts})
    entries = [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Parameters",
                                                      "parameter": parameters}}]  # fmt: skip
    entries += [{"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r,
                 "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                for r in resources]  # fmt: skip
    return body({"resourceType": "Bundle", "type": "history", "entry": entries})


def test_an_empty_rest_hook_notification_is_a_ping() -> None:
    assert read_notification(b"") == Notification("ping")
    assert read_notification(b"  \n") == Notification("ping")


def test_a_resource_put_to_its_path_names_its_patient() -> None:
    obs = {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p9"}}
    assert read_notification(body(obs), "Observation/o1").patients == ("p9",)
    assert read_notification(b"", "Patient/p3").patients == ("p3",)
    assert read_notification(b"", "Encounter/e1").foci == ("Encounter/e1",)


def test_a_patient_posted_is_its_own_patient() -> None:
    found = read_notification(body({"resourceType": "Patient", "id": "p1"}))
    assert (found.kind, found.patients, found.foci) == ("event", ("p1",), ())


def test_a_backport_event_names_its_focus_and_context() -> None:
    found = read_notification(
        backport(
            "event-notification",
            {"focus": f"{BASE}/Encounter/e1", "context": [f"{BASE}/Patient/p1"]},
            {"focus": f"{BASE}/Patient/p2/_history/3"},
        )
    )
    assert found.patients == ("p1", "p2")
    assert found.foci == ("Encounter/e1",)


def test_a_full_resource_backport_event_names_the_resources_patient() -> None:
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"reference": f"{BASE}/Patient/p4"},
    }
    found = read_notification(
        backport("event-notification", {"focus": f"{BASE}/Observation/o1"}, resources=(obs,))
    )
    assert found.patients == ("p4",)
    assert found.foci == ("Observation/o1",)  # the focus as named; its patient is known


@pytest.mark.parametrize("kind", ["handshake", "heartbeat", "query-status"])
def test_handshakes_and_heartbeats_ask_for_nothing(kind: str) -> None:
    found = read_notification(backport(kind))
    assert (found.kind, found.names_records) == (kind, False)


def test_an_empty_content_event_is_a_ping() -> None:
    assert read_notification(backport("event-notification", {})).kind == "ping"


def test_an_r4b_subscription_status_is_read_too() -> None:
    status = {
        "resourceType": "SubscriptionStatus",
        "type": "event-notification",
        "notificationEvent": [
            {"eventNumber": "1", "focus": {"reference": "Patient/p5"},
             "additionalContext": [{"reference": "Encounter/e5"}]}
        ],
    }  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "history", "entry": [{"resource": status}]}
    found = read_notification(body(bundle))
    assert (found.patients, found.foci) == (("p5",), ("Encounter/e5",))


def test_a_plain_bundle_names_its_resources_and_its_deletions() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {"resource": {"resourceType": "Condition", "id": "c1",
                          "subject": {"reference": "Patient/p6"}}},
            {"request": {"method": "DELETE", "url": "AllergyIntolerance/a1"}},
        ],
    }  # fmt: skip
    found = read_notification(body(bundle))
    assert (found.patients, found.foci) == (("p6",), ("AllergyIntolerance/a1",))


@pytest.mark.parametrize(
    ("vendor", "patients", "foci"),
    [
        ({"event": "patient.updated", "patientId": "123"}, ("123",), ()),
        ({"patient": {"reference": "Patient/124"}}, ("124",), ()),
        ({"resource": "Observation/9"}, (), ("Observation/9",)),
        ({"reference": f"{BASE}/Patient/125"}, ("125",), ()),
        ([{"patient_id": "1"}, {"patient_id": "2"}, {"patient_id": "1"}], ("1", "2"), ()),
        (
            {"events": [{"focus": "Encounter/7"}, {"patient": "Patient/8"}]},
            ("8",),
            ("Encounter/7",),
        ),
    ],
)
def test_a_vendor_webhook_names_patients_or_resources(
    vendor: Any, patients: tuple[str, ...], foci: tuple[str, ...]
) -> None:
    found = read_notification(body(vendor))
    assert (found.patients, found.foci) == (patients, foci)


@pytest.mark.parametrize(
    "bad",
    [b"not json", b"42", body({"event": "something"}), body({"patient": "../../etc"})],
)
def test_a_notification_naming_nothing_usable_is_refused(bad: bytes) -> None:
    with pytest.raises(InvalidRequest):
        read_notification(bad)


def test_too_many_records_at_once_are_refused() -> None:
    many = [{"patient": f"p{n}"} for n in range(MAX_TARGETS + 1)]
    with pytest.raises(InvalidRequest, match="at most"):
        read_notification(body(many))


def test_references_and_patients() -> None:
    assert reference_parts("Patient/1") == ("Patient", "1")
    assert reference_parts(f"{BASE}/Observation/o-1/_history/2") == ("Observation", "o-1")
    assert reference_parts({"reference": "Encounter/e"}) == ("Encounter", "e")
    assert reference_parts("urn:uuid:0000") is None
    assert reference_parts("#contained") is None
    assert patient_of({"resourceType": "Encounter", "subject": {"reference": "Group/g"}}) is None
    assert patient_of({"resourceType": "AllergyIntolerance",
                       "patient": {"reference": "Patient/a"}}) == "a"  # fmt: skip
