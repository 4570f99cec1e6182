"""``POST /api/v1/fhir/notify/{connection}``: a FHIR notification, proven by the
connection's bearer secret (a rest-hook's channel.header) or a vendor's signature,
queues one PATIENT_SYNC per patient it names, and no second one while the first waits."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from pacsync.bootstrap import fhir, fhir_notifications
from pacsync.bootstrap.fhir_sync import PATIENT_PRIORITY, SYNC_PRIORITY
from pacsync.db.fhir_resources import FhirResourceStore
from pacsync.errors import InvalidRequest
from pacsync.security.signatures import sign_headers

from .conftest import Api, problem

URL = "/fhir/notify/ehr"


@pytest.fixture
def secret(api: Api) -> str:
    fhir.add_connection(api.store, "ehr", "http://127.0.0.1:9/fhir", {})
    _, made = fhir_notifications.enable(api.store, "ehr", sync={"types": ["Patient"]})
    assert made
    return made


def notification(*references: str, kind: str = "event-notification") -> bytes:
    """An R4 backport notification Bundle naming ``references`` as focus."""
    parameters: list[dict[str, Any]] = [{"name": "type", "valueCode": kind}]
    parameters += [
        {"name": "notification-event",
         "part": [{"name": "focus", "valueReference": {"reference": r}}]}
        for r in references
    ]  # fmt: skip
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [{"resource": {"resourceType": "Parameters", "parameter": parameters}}],
    }
    return json.dumps(bundle).encode()


def post(api: Api, secret: str | None, body: bytes, path: str = URL, **headers: str) -> Any:
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    headers.setdefault("Content-Type", "application/fhir+json")
    return api.post(path, as_=None, content=body, headers=headers)


def jobs_of(response: httpx.Response) -> dict[str, tuple[str, bool]]:
    assert response.status_code in (200, 202), response.text
    return {j["target"]: (j["job_id"], j["created"]) for j in response.json()["jobs"]}


def test_each_patient_named_gets_one_patient_sync_while_it_waits(api: Api, secret: str) -> None:
    first = jobs_of(post(api, secret, notification("Patient/p1", "http://x/fhir/Patient/p2")))
    assert set(first) == {"Patient/p1", "Patient/p2"}
    assert all(created for _, created in first.values())
    job = api.store.jobs.get(first["Patient/p1"][0])
    assert job is not None
    assert (job.kind, job.trigger, job.queue, job.status) == (
        "fhir-sync", "webhook", "sync-jobs", "queued")  # fmt: skip
    assert job.request is not None
    assert job.request["args"]["patient"] == "p1"
    assert job.request["args"]["types"] == ["Patient"]  # the options kept with the connection
    assert job.request["priority"] == PATIENT_PRIORITY < SYNC_PRIORITY

    for _ in range(5):  # a storm: the waiting jobs take it
        again = jobs_of(post(api, secret, notification("Patient/p1", "Patient/p2")))
        assert again == {t: (j, False) for t, (j, _) in first.items()}

    api.store.jobs.start(first["Patient/p1"][0], "worker")  # p1's sync reads now
    later = jobs_of(post(api, secret, notification("Patient/p1", "Patient/p2")))
    assert later["Patient/p1"][1] is True
    assert later["Patient/p1"][0] != first["Patient/p1"][0]
    assert later["Patient/p2"] == (first["Patient/p2"][0], False)
    assert len(api.store.jobs.recent(limit=20)) == 3

    audited = api.audit("fhir.notify")
    assert len(audited) == 7
    assert {(e["actor"], e["target"], e["outcome"]) for e in audited} == {
        ("fhir-notify:ehr", "ehr", "queued")
    }
    assert audited[0]["detail"]["auth"] == "bearer"


def test_a_resource_names_its_patient_and_an_unknown_one_is_found_later(
    api: Api, secret: str
) -> None:
    FhirResourceStore(api.store.engine).save(
        {"resourceType": "Observation", "id": "o1", "status": "final",
         "code": {"text": "x"}, "subject": {"reference": "Patient/p3"}}
    )  # fmt: skip
    found = jobs_of(post(api, secret, notification("Observation/o1", "Encounter/e9")))
    assert set(found) == {"Patient/p3", "Encounter/e9"}
    job = api.store.jobs.get(found["Encounter/e9"][0])
    assert job is not None
    assert job.request is not None
    assert (job.request["args"]["focus"], job.request["args"]["patient"]) == ("Encounter/e9", None)

    put = api.request("PUT", f"{URL}/Observation/o2", as_=None, content=b"{}",
                      headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert set(jobs_of(put)) == {"Observation/o2"}


def test_an_empty_notification_queues_an_incremental_sync_once(api: Api, secret: str) -> None:
    first = jobs_of(post(api, secret, b""))
    assert set(first) == {"ehr"}
    job = api.store.jobs.get(first["ehr"][0])
    assert job is not None
    assert job.request is not None
    assert (job.mode, job.request["args"]["patient"], job.request["priority"]) == (
        "incremental", None, SYNC_PRIORITY)  # fmt: skip
    assert jobs_of(post(api, secret, b""))["ehr"] == (first["ehr"][0], False)


@pytest.mark.parametrize("kind", ["handshake", "heartbeat"])
def test_a_handshake_or_heartbeat_is_answered_and_queues_nothing(
    api: Api, secret: str, kind: str
) -> None:
    response = post(api, secret, notification(kind=kind))
    assert response.status_code == 200
    assert response.json() == {"connection": "ehr", "kind": kind, "jobs": []}
    assert api.store.jobs.recent() == []


def test_a_signed_vendor_webhook_is_taken_and_a_replay_refused(api: Api, secret: str) -> None:
    body = json.dumps({"event": "patient.updated", "patientId": "p7"}).encode()
    headers = sign_headers("standard-webhooks", secret, "msg-1", time.time(), body)
    found = jobs_of(post(api, None, body, **headers))
    assert set(found) == {"Patient/p7"}
    problem(post(api, None, body, **headers), 409, "PACS-107")


def test_a_wrong_or_missing_secret_is_refused_and_writes_nothing(api: Api, secret: str) -> None:
    body = notification("Patient/p1")
    problem(post(api, secret + "x", body), 401, "PACS-002")
    problem(post(api, None, body), 401, "PACS-002")
    problem(post(api, secret, body, path="/fhir/notify/other"), 401, "PACS-002")
    assert api.store.jobs.recent() == []
    assert api.audit("fhir.notify") == []


def test_a_notification_naming_nothing_is_a_problem(api: Api, secret: str) -> None:
    problem(post(api, secret, b'{"hello": "world"}'), 400, "PACS-105")
    bad_path = api.request("PUT", f"{URL}/not-a-type/1", as_=None, content=b"",
                           headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert bad_path.status_code == 400, bad_path.text
    assert api.store.jobs.recent() == []


def test_the_subscription_carries_the_secret_as_a_header() -> None:
    made = fhir_notifications.subscription(
        "https://pacsync.example.org/api/v1/fhir/notify/ehr", "s3cret", criteria="Patient"
    )
    assert made["channel"] == {
        "type": "rest-hook",
        "endpoint": "https://pacsync.example.org/api/v1/fhir/notify/ehr",
        "header": ["Authorization: Bearer s3cret"],
        "payload": "application/fhir+json",
    }
    topic = fhir_notifications.subscription(
        "https://p/x", "s", topic="http://t/patient-change", filters=["_id=1"], payload="id-only"
    )
    assert topic["criteria"] == "http://t/patient-change"
    assert topic["_criteria"]["extension"][0]["valueString"] == "_id=1"


def test_the_sync_options_outlive_a_connection_added_again_and_removal_stops_it(
    api: Api, secret: str
) -> None:
    fhir.add_connection(api.store, "ehr", "http://127.0.0.1:9/fhir", {"page_size": 50})
    assert fhir_notifications.sync_options(api.store, "ehr") == {"types": ["Patient"]}
    assert fhir_notifications.disable(api.store, "ehr")
    problem(post(api, secret, notification("Patient/p1")), 401, "PACS-002")
    assert not fhir_notifications.disable(api.store, "ehr")


def test_subscriptions_are_made_only_where_the_server_offers_them() -> None:
    def statement(*resources: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "CapabilityStatement", "rest": [{"resource": list(resources)}]}

    offers = fhir_notifications.offers_subscriptions
    assert not offers(statement({"type": "Patient"}))
    assert offers(statement({"type": "Subscription", "interaction": [{"code": "create"}]}))
    assert not offers(statement({"type": "Subscription", "interaction": [{"code": "read"}]}))
    with pytest.raises(InvalidRequest):
        fhir_notifications.subscription("https://p/x", "s", criteria="Patient", topic="t")
    with pytest.raises(InvalidRequest):
        fhir_notifications.subscription("https://p/x", "s", criteria="Patient", payload="all")
