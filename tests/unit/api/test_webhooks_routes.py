"""``/webhooks``: subscriptions with their secret shown once, event names checked,
deliveries listed and failed ones queued again; inbound sources; and the receiving
route, authenticated by signature alone, that queues the source's pipeline and
writes nothing for a message it refuses."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import func, select

from pacsync.api.rate_limit import RateLimiter
from pacsync.db.tables import webhook_receipts
from pacsync.domain.access import Role
from pacsync.jobs.webhooks import EVENTS
from pacsync.security.signatures import new_webhook_secret, sign_headers

from .conftest import Api, problem

HOOK = {"url": "https://hooks.example.org/pacsync", "events": ["job.failed", "dead_letter.*"]}


def _create(api: Api, **changes: Any) -> dict[str, Any]:
    response = api.post("/webhooks", json={**HOOK, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_webhook_is_created_with_its_secret_shown_once(api: Api) -> None:
    created = _create(api, pipelines=["county"], description="on-call")
    assert created["secret"].startswith("whsec_")
    assert (created["events"], created["pipelines"], created["active"]) == (
        ["job.failed", "dead_letter.*"],
        ["county"],
        True,
    )
    listed = api.get("/webhooks").json()
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0]
    one = api.get(f"/webhooks/{created['id']}").json()
    assert "secret" not in one
    assert one["recent_deliveries"] == []
    assert created["secret"] not in api.get("/webhooks").text
    (entry,) = api.audit("webhook.create")
    assert (entry["target"], entry["outcome"]) == (created["id"], "ok")
    assert created["secret"] not in str(entry)
    subscriber = api.store.webhooks.subscribers("job.failed", "county")
    assert [s.secret for s in subscriber] == [created["secret"]]


def test_a_webhook_can_be_limited_to_a_fhir_connections_syncs(api: Api) -> None:
    created = _create(api, events=["record.changed"], pipelines=["fhir:ehr"])
    assert created["pipelines"] == ["fhir:ehr"]
    subscribed = api.store.webhooks.subscribers("record.changed", "fhir:ehr")
    assert [s.secret for s in subscribed] == [created["secret"]]
    assert api.store.webhooks.subscribers("record.changed", "ehr") == []
    for wrong in ("fhir:", "sql:county", "fhir:ehr:x", "County"):
        problem(api.post("/webhooks", json={**HOOK, "pipelines": [wrong]}), 422, "PACS-105")


def test_unknown_events_are_refused_with_the_valid_names(api: Api) -> None:
    body = problem(
        api.post("/webhooks", json={**HOOK, "events": ["job.exploded"]}), 422, "PACS-105"
    )
    assert "job.exploded" in body["detail"]
    for name in EVENTS:
        assert name in body["detail"]
    problem(api.post("/webhooks", json={**HOOK, "events": []}), 422, "PACS-105")
    problem(api.post("/webhooks", json={**HOOK, "url": "ftp://x"}), 422, "PACS-105")
    assert api.store.webhooks.list() == []


def test_webhooks_are_for_admins(api: Api) -> None:
    problem(api.post("/webhooks", json=HOOK, as_=Role.OPERATOR), 403, "PACS-002")
    problem(api.get("/webhooks", as_=Role.OPERATOR), 403, "PACS-002")
    problem(api.get("/webhooks", as_=None), 401, "PACS-002")
    (entry,) = api.audit("webhook.create")
    assert entry["outcome"] == "denied"


def test_deliveries_are_listed_newest_first_and_filtered(api: Api) -> None:
    hook = _create(api)["id"]
    webhooks = api.store.webhooks
    first = webhooks.add_delivery(hook, "job.failed", {"type": "job.failed"})
    second = webhooks.add_delivery(hook, "job.failed", {"type": "job.failed"})
    webhooks.mark_delivered(first.id, 200, "thanks")
    webhooks.mark_failed(second.id, "PACS-303 refused", response_status=410)
    listed = api.get(f"/webhooks/{hook}/deliveries").json()
    assert [d["id"] for d in listed] == [second.id, first.id]
    assert listed[1]["response_body"] == "thanks"
    failed = api.get(f"/webhooks/{hook}/deliveries?status=failed").json()
    assert [(d["id"], d["response_status"], d["attempts"]) for d in failed] == [(second.id, 410, 1)]
    detail = api.get(f"/webhooks/{hook}").json()
    assert [d["message_id"] for d in detail["recent_deliveries"]] == [
        second.message_id,
        first.message_id,
    ]
    problem(api.get("/webhooks/0000000000000000/deliveries"), 404, "PACS-104")


def test_retry_queues_the_failed_deliveries_again(api: Api) -> None:
    hook = _create(api)["id"]
    webhooks = api.store.webhooks
    failed = webhooks.add_delivery(hook, "job.failed", {"type": "job.failed"})
    webhooks.mark_failed(failed.id, "PACS-001 no answer")
    done = webhooks.add_delivery(hook, "job.failed", {"type": "job.failed"})
    webhooks.mark_delivered(done.id, 204)
    response = api.post(f"/webhooks/{hook}/retry")
    assert response.status_code == 202, response.text
    assert response.json() == {"webhook_id": hook, "requeued": [failed.id]}
    again = webhooks.delivery(failed.id)
    assert again is not None
    assert (again.status, again.attempts, again.message_id) == ("pending", 1, failed.message_id)
    depths = api.client.app.state.api.job_client().queue_depths()  # type: ignore[attr-defined]
    assert depths["webhook-delivery"]["waiting"] == 1
    assert api.post(f"/webhooks/{hook}/retry").json()["requeued"] == []
    (_, entry) = api.audit("webhook.retry")
    assert entry["detail"] == {"deliveries": [failed.id]}


def test_a_deleted_webhook_is_gone_with_its_deliveries(api: Api) -> None:
    hook = _create(api)["id"]
    api.store.webhooks.add_delivery(hook, "job.failed", {})
    assert api.delete(f"/webhooks/{hook}").json() == {"id": hook, "deleted": True}
    problem(api.get(f"/webhooks/{hook}"), 404, "PACS-104")
    problem(api.delete(f"/webhooks/{hook}"), 404, "PACS-104")
    assert api.store.webhooks.deliveries(hook) == []


# -- inbound ------------------------------------------------------------------------------


def test_a_source_gets_a_generated_secret_once_and_keeps_it(api: Api) -> None:
    api.pipeline_file("county")
    body = {"scheme": "standard-webhooks", "pipeline": "county", "entities": ["parcels"]}
    response = api.put("/webhooks/sources/ehr", json=body)
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["secret"].startswith("whsec_")
    assert (made["pipeline"], made["mode"], made["entities"]) == (
        "county",
        "incremental",
        ["parcels"],
    )
    again = api.put("/webhooks/sources/ehr", json={**body, "mode": "full"})
    assert again.status_code == 200
    assert again.json()["secret"] is None
    assert api.store.webhook_sources.source_secret("ehr") == made["secret"]
    shown = api.get("/webhooks/sources/ehr").json()
    assert "secret" not in shown
    assert shown["mode"] == "full"
    assert [s["source"] for s in api.get("/webhooks/sources").json()] == ["ehr"]
    entries = api.audit("webhook_source.put")
    assert [e["detail"]["secret"] for e in entries] == ["kept", "generated"]
    assert made["secret"] not in str(entries)
    assert api.delete("/webhooks/sources/ehr").json() == {"source": "ehr", "deleted": True}
    problem(api.get("/webhooks/sources/ehr"), 404, "PACS-104")
    problem(api.delete("/webhooks/sources/ehr"), 404, "PACS-104")


def test_a_source_must_run_a_known_pipeline_and_entities(api: Api) -> None:
    api.pipeline_file("county")
    put = api.put
    problem(
        put("/webhooks/sources/x", json={"scheme": "github", "pipeline": "nope"}), 404, "PACS-102"
    )
    wrong = {"scheme": "github", "pipeline": "county", "entities": ["ghosts"]}
    problem(put("/webhooks/sources/x", json=wrong), 422, "PACS-101")
    bad_secret = {
        "scheme": "standard-webhooks",
        "pipeline": "county",
        "secret": "not base64 at all!",
    }
    problem(put("/webhooks/sources/x", json=bad_secret), 422, "PACS-101")
    assert api.store.webhook_sources.list_sources() == []


SECRETS = {
    "standard-webhooks": new_webhook_secret(),
    "github": "gh-shared-secret-0123456789",
    "hmac-sha512": "hmac-shared-secret-0123456789",
}
BODY = b'{"event":"patient.updated","id":"p-17"}'


def _source(api: Api, scheme: str) -> None:
    api.pipeline_file("county")
    body = {"scheme": scheme, "secret": SECRETS[scheme], "pipeline": "county", "mode": "full"}
    assert api.put(f"/webhooks/sources/{scheme}", json=body).status_code == 201


def _send(api: Api, scheme: str, headers: dict[str, str], body: bytes = BODY) -> Any:
    return api.post(f"/webhooks/receive/{scheme}", as_=None, content=body, headers=headers)


def _written(api: Api) -> tuple[int, int, int]:
    """Jobs, receipts and webhook.receive audit entries in the store."""
    with api.store.engine.connect() as conn:
        receipts = conn.execute(select(func.count()).select_from(webhook_receipts)).scalar_one()
    return len(api.store.jobs.recent()), receipts, len(api.audit("webhook.receive"))


@pytest.mark.parametrize("scheme", list(SECRETS))
def test_a_signed_message_queues_the_pipeline_and_a_replay_is_refused(
    api: Api, scheme: str
) -> None:
    _source(api, scheme)
    headers = sign_headers(scheme, SECRETS[scheme], f"{scheme}-1", time.time(), BODY)
    response = _send(api, scheme, headers)
    assert response.status_code == 202, response.text
    accepted = response.json()
    job = api.store.jobs.get(accepted["job_id"])
    assert job is not None
    assert (job.pipeline, job.mode, job.trigger, job.kind) == ("county", "full", "webhook", "sync")
    assert (accepted["status"], accepted["queue"]) == ("queued", "sync-jobs")
    (entry,) = api.audit("webhook.receive")
    assert (entry["actor"], entry["target"], entry["outcome"]) == (
        f"webhook:{scheme}",
        scheme,
        "queued",
    )
    assert entry["detail"] == {"message_id": f"{scheme}-1", "job_id": job.id}
    before = _written(api)
    problem(_send(api, scheme, headers), 409, "PACS-107")
    assert _written(api) == before


@pytest.mark.parametrize("scheme", list(SECRETS))
def test_a_bad_signature_is_refused_and_writes_nothing(api: Api, scheme: str) -> None:
    _source(api, scheme)
    before = _written(api)
    other = new_webhook_secret()  # whsec_ serves as a secret for every scheme
    forged = sign_headers(scheme, other, "m-1", time.time(), BODY)
    problem(_send(api, scheme, forged), 401, "PACS-002")
    changed = sign_headers(scheme, SECRETS[scheme], "m-1", time.time(), BODY)
    problem(_send(api, scheme, changed, body=BODY + b" "), 401, "PACS-002")
    problem(_send(api, scheme, {}), 401, "PACS-002")
    assert _written(api) == before
    # the refused message's id was not used up
    assert _send(api, scheme, changed).status_code == 202


@pytest.mark.parametrize("scheme", ["standard-webhooks", "hmac-sha512"])
def test_a_message_more_than_five_minutes_old_is_refused(api: Api, scheme: str) -> None:
    _source(api, scheme)
    before = _written(api)
    old = sign_headers(scheme, SECRETS[scheme], "m-old", time.time() - 301, BODY)
    body = problem(_send(api, scheme, old), 401, "PACS-002")
    assert "old" in body["detail"]
    assert _written(api) == before
    recent = sign_headers(scheme, SECRETS[scheme], "m-new", time.time() - 290, BODY)
    assert _send(api, scheme, recent).status_code == 202


def test_an_unknown_source_is_404(api: Api) -> None:
    headers = sign_headers("github", "s", "m", time.time(), BODY)
    problem(_send(api, "nobody", headers), 404, "PACS-104")


def test_source_routes_are_for_admins(api: Api) -> None:
    api.pipeline_file("county")
    body = {"scheme": "github", "pipeline": "county"}
    problem(api.put("/webhooks/sources/x", json=body, as_=Role.OPERATOR), 403, "PACS-002")
    problem(api.get("/webhooks/sources", as_=Role.VIEWER), 403, "PACS-002")


def test_refused_messages_cost_the_sender_address_tokens(api: Api) -> None:
    _source(api, "github")
    state = api.client.app.state.api  # type: ignore[attr-defined]
    state.limiter = RateLimiter(default_per_min=2)
    forged = sign_headers("github", "not-the-secret", "m-9", time.time(), BODY)
    problem(_send(api, "github", forged), 401, "PACS-002")
    problem(_send(api, "github", forged), 401, "PACS-002")
    limited = problem(_send(api, "github", forged), 429, "PACS-106")
    assert "refused" in limited["detail"]
    signed = sign_headers("github", SECRETS["github"], "m-9", time.time(), BODY)
    assert _send(api, "github", signed).status_code == 202  # a good message is not held back
