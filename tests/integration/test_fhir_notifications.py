"""FHIR notifications and ``record.changed`` for real: a FHIR server (sekmet-fhir on
loopback, tests/fhir_server.py), ``pacsync serve`` and ``pacsync worker`` processes on
pacsync's store, and an HTTP receiver in this process.

- a notification Bundle posted to ``/api/v1/fhir/notify/ehr`` with the connection's
  bearer secret queues one PATIENT_SYNC (however often it is posted while the job
  waits), and the worker that runs it brings that patient's records in;
- a rest-hook Subscription made by ``pacsync fhir subscribe`` on the server notifies
  pacsync by itself when a matching patient is created there;
- a deletion on the server reaches pacsync's store through a patient sync, and each
  record written is delivered to a webhook as ``record.changed``;
- a patient sync queued after a full sync of the same connection runs first.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from background_jobs import run_queued
from fhir_server import SCOPE, FhirServer, sekmet
from pacsync import bootstrap
from pacsync.config import Settings
from pacsync.db.fhir_resources import FhirResourceStore
from processes import KEY, Process, free_port, wait_until_up

from .test_api_webhooks import Receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with sekmet(tmp_path_factory.mktemp("sekmet-notify")) as running:
        yield running


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def store(pacsync: Any, server: FhirServer) -> Iterator[bootstrap.Store]:
    """Connection ``ehr`` in the CLI's store; that store, opened here too."""
    ok(pacsync("fhir", "connection", "add", "ehr", server.base_url, "--client-id",
               server.client_id, "--key", server.key_path, "--token-url", server.token_url,
               "--scope", SCOPE))  # fmt: skip
    settings = Settings(_env_file=None, home=Path(pacsync.env["PACSYNC_HOME"]),
                        database_url=None, secret_key=None)  # fmt: skip
    opened = bootstrap.store(settings)
    yield opened
    opened.engine.dispose()


@pytest.fixture
def secret(pacsync: Any, store: bootstrap.Store) -> str:
    out = ok(pacsync("fhir", "notifications", "add", "ehr", "--type", "Patient,Observation"))
    found = re.search(r"secret \(shown once\): (\S+)", out)
    assert found, out
    return found.group(1)


@pytest.fixture
def api(pacsync: Any, store: bootstrap.Store) -> Iterator[str]:
    """``pacsync serve`` on a free port: its base URL."""
    port = free_port()
    serving = Process(pacsync.start("serve", "--port", str(port)))
    base = f"http://127.0.0.1:{port}"
    try:
        serving.wait_for(KEY.pattern)
        wait_until_up(base, serving)
        yield base
    finally:
        serving.stop()


def seed(server: FhirServer) -> tuple[str, str]:
    """A patient and an observation of theirs, made on the server: their ids."""
    pid = f"nt-{secrets.token_hex(4)}"
    with server.client() as client:
        client.update({"resourceType": "Patient", "id": pid, "name": [{"family": "Notified"}],
                       "gender": "female"})  # fmt: skip
        client.update({"resourceType": "Observation", "id": f"obs-{pid}", "status": "final",
                       "code": {"text": "heart rate"}, "valueQuantity": {"value": 72},
                       "subject": {"reference": f"Patient/{pid}"}})  # fmt: skip
    return pid, f"obs-{pid}"


def backport_notification(server: FhirServer, *focus: str) -> bytes:
    """An R4 Subscriptions Backport event notification, as a server sends it."""
    parameters: list[dict[str, Any]] = [
        {"name": "subscription",
         "valueReference": {"reference": f"{server.base_url}/Subscription/s1"}},
        {"name": "type", "valueCode": "event-notification"},
        {"name": "events-since-subscription-start", "valueString": "1"},
    ]  # fmt: skip
    for n, reference in enumerate(focus, 1):
        parameters.append({"name": "notification-event", "part": [
            {"name": "event-number", "valueString": str(n)},
            {"name": "focus", "valueReference": {"reference": f"{server.base_url}/{reference}"}},
        ]})  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "history", "entry": [
        {"fullUrl": "urn:uuid:5d6f0d0e-6c8b-4c43-9d8e-1f2a3b4c5d6e",
         "resource": {"resourceType": "Parameters", "parameter": parameters}}]}  # fmt: skip
    return json.dumps(bundle).encode()


def queued_as_the_cli_says(job_id: str) -> Any:
    """What run_queued reads of a ``--background`` command, for a job the API queued."""
    return SimpleNamespace(stdout=f"job {job_id[:8]} queued", stderr="")


def test_a_notification_queues_one_patient_sync_that_brings_the_patient_in(
    pacsync: Any, server: FhirServer, store: bootstrap.Store, secret: str, api: str
) -> None:
    pid, obs = seed(server)
    body = backport_notification(server, f"Observation/{obs}")
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/fhir+json"}
    jobs = []
    for _ in range(3):  # the server retries, or the same change is told three times
        answer = httpx.post(f"{api}/api/v1/fhir/notify/ehr", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        jobs.append(answer.json()["jobs"])
    ((first,),) = jobs[:1]
    assert first["target"] == f"Observation/{obs}"  # not held here yet: found when run
    assert [j[0]["created"] for j in jobs] == [True, False, False]
    assert {j[0]["job_id"] for j in jobs} == {first["job_id"]}
    refused = httpx.post(f"{api}/api/v1/fhir/notify/ehr", content=body,
                         headers={**headers, "Authorization": "Bearer wrong"})  # fmt: skip
    assert refused.status_code == 401

    ended = run_queued(pacsync, store, queued_as_the_cli_says(first["job_id"]), "fhir-sync")

    assert ended.status == "succeeded", ended
    assert ended.trigger == "webhook"
    counts = ended.progress["entities"]
    assert (counts["Patient"]["pulled"], counts["Observation"]["pulled"]) == (1, 1)
    local = FhirResourceStore(store.engine)
    patient = local.current("Patient", pid)
    assert patient is not None
    assert patient["name"] == [{"family": "Notified"}]
    assert local.current("Observation", obs) is not None

    again = httpx.post(f"{api}/api/v1/fhir/notify/ehr", content=body, headers=headers)
    (next_job,) = again.json()["jobs"]
    assert next_job["target"] == f"Patient/{pid}"  # now its patient is known here
    assert next_job["created"] is True


def test_a_subscription_on_the_server_notifies_pacsync_by_itself(
    pacsync: Any, server: FhirServer, store: bootstrap.Store, secret: str, api: str
) -> None:
    family = f"Sub{secrets.token_hex(3)}"
    said = ok(pacsync("fhir", "subscribe", "ehr", "--url", f"{api}/api/v1/fhir/notify/ehr",
                      "--criteria", f"Patient?family={family}"))  # fmt: skip
    assert "Subscription/" in said
    with server.client() as client:
        made = [s for s in client.search("Subscription", {"status": "active"})
                if s["criteria"] == f"Patient?family={family}"]  # fmt: skip
        assert len(made) == 1, made
        assert made[0]["channel"]["header"] == [f"Authorization: Bearer {secret}"]
        pid = f"sub-{secrets.token_hex(4)}"
        client.update({"resourceType": "Patient", "id": pid, "name": [{"family": family}]})

    job = None
    deadline = time.monotonic() + 30  # the server notifies from its own thread
    while job is None:
        job = next((j for j in store.jobs.recent(limit=10)
                    if j.request and j.request["args"].get("patient") == pid), None)  # fmt: skip
        assert time.monotonic() < deadline, "no notification reached pacsync"
        time.sleep(0.2)
    assert (job.kind, job.trigger) == ("fhir-sync", "webhook")
    audited = store.audit.recent(action="fhir.notify", limit=5)
    assert audited[0]["detail"]["auth"] == "bearer"

    ended = run_queued(pacsync, store, queued_as_the_cli_says(job.id), "fhir-sync")
    assert ended.status == "succeeded", ended
    assert FhirResourceStore(store.engine).current("Patient", pid) is not None


def test_a_deletion_on_the_server_reaches_pacsync_and_each_change_is_delivered(
    pacsync: Any, server: FhirServer, store: bootstrap.Store
) -> None:
    receiver = Receiver()
    worker = Process(pacsync.start("worker", "--id", "hooks", "--queues", "webhook-delivery"))
    try:
        worker.wait_for(r"worker hooks ready")
        store.webhooks.create(f"{receiver.url}/changes", ["record.changed"], ["fhir:ehr"], None)
        pid, obs = seed(server)
        sync = ("fhir", "sync", "ehr", "--patient", pid, "--type", "Patient,Observation")
        ok(pacsync(*sync))
        with server.client() as client:
            client.delete("Observation", obs)
        ok(pacsync(*sync))
        local = FhirResourceStore(store.engine)
        assert local.current("Observation", obs) is None
        assert local.current("Patient", pid) is not None

        deadline = time.monotonic() + 60
        while len(receiver.at("/changes")) < 3:
            assert time.monotonic() < deadline, receiver.received
            time.sleep(0.2)
    finally:
        worker.stop()
        receiver.close()
    told = sorted(
        (d["resource_type"], d["resource_id"], d["direction"], d["change"])
        for d in (json.loads(r.body)["data"] for r in receiver.at("/changes"))
    )
    assert told == [
        ("Observation", obs, "inbound", "created"),
        ("Observation", obs, "inbound", "deleted"),
        ("Patient", pid, "inbound", "created"),
    ]
    first = json.loads(receiver.at("/changes")[0].body)
    assert (first["type"], first["data"]["pipeline"], first["data"]["mode"]) == (
        "record.changed", "fhir:ehr", "patient")  # fmt: skip
    assert receiver.at("/changes")[0].headers["webhook-signature"].startswith("v1,")


def test_a_patient_sync_runs_before_a_full_sync_queued_earlier(
    pacsync: Any, server: FhirServer, store: bootstrap.Store
) -> None:
    pid, _ = seed(server)
    full = pacsync("fhir", "sync", "ehr", "--full", "--type", "Patient", "--background")
    one = pacsync("fhir", "sync", "ehr", "--patient", pid, "--type", "Patient", "--background")
    ids = []
    for queued in (full, one):
        found = re.search(r"job (\w{8}) queued", ok(queued))
        assert found
        ids.append(next(j.id for j in store.jobs.recent(limit=5) if j.id.startswith(found[1])))
    worker = Process(pacsync.start("worker", "--id", "order", "--queues", "sync-jobs"))
    try:
        deadline = time.monotonic() + 120
        while any(store.jobs.status_of(i) in ("queued", "running") for i in ids):
            assert time.monotonic() < deadline, [store.jobs.get(i) for i in ids]
            time.sleep(0.3)
    finally:
        worker.stop()
    ended = [store.jobs.get(i) for i in ids]
    assert [j.status for j in ended if j] == ["succeeded", "succeeded"]
    full_job, patient_job = ended
    assert full_job is not None
    assert patient_job is not None
    assert patient_job.started_at is not None
    assert full_job.started_at is not None
    assert patient_job.started_at < full_job.started_at  # one connection: one at a time
