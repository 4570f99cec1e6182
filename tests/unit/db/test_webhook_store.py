"""Webhooks: subscriptions with sealed secrets, the delivery log; inbound sources and replays."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import Engine, select
from standardwebhooks import Webhook

from pacsync.db.tables import webhook_sources, webhooks
from pacsync.db.webhook_sources import WebhookSourceStore
from pacsync.db.webhooks import RESPONSE_BODY_LIMIT, WebhookStore
from pacsync.domain.clock import utc_now
from pacsync.errors import AuthenticationFailed, ConfigError, InvalidRequest, InvalidState, NotFound
from pacsync.security import signatures
from pacsync.security.secrets import SecretBox, is_sealed

BODY = b'{"id": 7}'


def test_a_webhook_secret_is_shown_once_and_kept_sealed(engine: Engine, box: SecretBox) -> None:
    store = WebhookStore(engine, box)
    view, secret = store.create("https://hooks.example/in", ["job.*"], ["ehr"], "ops")
    assert secret.startswith("whsec_")
    assert (view.events, view.pipelines, view.description, view.active) == (
        ["job.*"],
        ["ehr"],
        "ops",
        True,
    )
    with engine.connect() as conn:
        stored = conn.execute(select(webhooks.c.secret)).scalar_one()
    assert is_sealed(stored)
    assert secret not in stored
    assert store.get(view.id) == view
    assert store.list() == [view]
    assert "whsec_" not in repr(store.list())


def test_subscribers_match_event_families_pipelines_and_activity(
    engine: Engine, box: SecretBox
) -> None:
    store = WebhookStore(engine, box)
    every, every_secret = store.create("https://a.example/", ["*"])
    jobs, _ = store.create("https://b.example/", ["job.*"], ["ehr"])
    exact, _ = store.create("https://c.example/", ["conflict.detected"])
    paused, _ = store.create("https://d.example/", ["*"])
    assert store.set_active(paused.id, False)

    def ids(event: str, pipeline: str | None) -> set[str]:
        return {s.webhook.id for s in store.subscribers(event, pipeline)}

    assert ids("job.completed", "ehr") == {every.id, jobs.id}
    assert ids("job.completed", "pms") == {every.id}
    assert ids("conflict.detected", "pms") == {every.id, exact.id}
    assert ids("jobless", None) == {every.id}
    (first,) = [s for s in store.subscribers("x", None) if s.webhook.id == every.id]
    assert first.secret == every_secret
    assert every_secret not in repr(first)
    headers = signatures.standard_headers(first.secret, "msg_1", time.time(), BODY)
    assert Webhook(every_secret).verify(BODY, headers) == {"id": 7}


def test_the_delivery_log_records_attempts(engine: Engine, box: SecretBox) -> None:
    store = WebhookStore(engine, box)
    hook, _ = store.create("https://a.example/", ["*"])
    first = store.add_delivery(hook.id, "job.failed", {"job": "j1"})
    assert first.message_id.startswith("msg_")
    assert (first.status, first.attempts) == ("pending", 0)
    retry_at = utc_now() + dt.timedelta(seconds=30)
    store.mark_failed(first.id, "connection refused", next_attempt_at=retry_at)
    again = store.delivery(first.id)
    assert again is not None
    assert (again.status, again.attempts, again.error) == ("pending", 1, "connection refused")
    assert again.next_attempt_at == retry_at
    store.mark_delivered(first.id, 200, "x" * 5000)
    done = store.delivery(first.id)
    assert done is not None
    assert (done.status, done.attempts, done.response_status, done.error) == (
        "delivered",
        2,
        200,
        None,
    )
    assert done.response_body == "x" * RESPONSE_BODY_LIMIT
    assert done.message_id == first.message_id
    second = store.add_delivery(hook.id, "job.failed", {"job": "j2"}, message_id="msg_given")
    store.mark_failed(second.id, "HTTP 500", response_status=500, response_body="oops")
    assert [(d.message_id, d.status) for d in store.deliveries(hook.id)] == [
        ("msg_given", "failed"),
        (first.message_id, "delivered"),
    ]
    assert len(store.deliveries(hook.id, limit=1)) == 1
    with pytest.raises(NotFound):
        store.mark_delivered(999, 200)


def test_deleting_a_webhook_drops_its_log(engine: Engine, box: SecretBox) -> None:
    store = WebhookStore(engine, box)
    hook, _ = store.create("https://a.example/", ["*"])
    store.add_delivery(hook.id, "e", {})
    assert store.delete(hook.id) is True
    assert store.delete(hook.id) is False
    assert store.deliveries(hook.id) == []
    assert store.get(hook.id) is None


@pytest.mark.parametrize(
    ("url", "events", "pipelines"),
    [("ftp://x/", ["*"], []), ("https://x/", [], []), ("https://x/", "job.*", [])],
)
def test_bad_webhooks_are_refused(
    engine: Engine, box: SecretBox, url: str, events: list[str], pipelines: list[str]
) -> None:
    with pytest.raises(InvalidRequest):
        WebhookStore(engine, box).create(url, events, pipelines)


def test_receipts_refuse_a_replayed_message(engine: Engine, box: SecretBox) -> None:
    store = WebhookSourceStore(engine, box)
    assert store.remember_receipt("github", "d-1") is True
    assert store.remember_receipt("github", "d-1") is False
    assert store.remember_receipt("stripe", "d-1") is True  # ids are per source
    assert store.forget_receipts(utc_now() + dt.timedelta(seconds=1)) == 2
    assert store.remember_receipt("github", "d-1") is True


def test_a_source_verifies_signed_messages_once(engine: Engine, box: SecretBox) -> None:
    store = WebhookSourceStore(engine, box)
    view, secret = store.put_source(
        "lab", "standard-webhooks", pipeline="ehr", mode="incremental", entities=["results"]
    )
    assert secret is not None
    assert (view.scheme, view.pipeline, view.mode, view.entities) == (
        "standard-webhooks",
        "ehr",
        "incremental",
        ["results"],
    )
    with engine.connect() as conn:
        assert is_sealed(conn.execute(select(webhook_sources.c.secret)).scalar_one())
    headers = signatures.standard_headers(secret, "msg_9", time.time(), BODY)
    accepted, message_id = store.accept("lab", headers, BODY)
    assert (accepted.source, message_id) == ("lab", "msg_9")
    with pytest.raises(InvalidState, match="received before"):
        store.accept("lab", headers, BODY)
    with pytest.raises(AuthenticationFailed, match="webhook-signature"):
        store.accept("lab", {**headers, "webhook-id": "msg_10"}, BODY)
    stale = signatures.standard_headers(secret, "msg_11", time.time() - 600, BODY)
    with pytest.raises(AuthenticationFailed, match="old"):
        store.accept("lab", stale, BODY)
    with pytest.raises(NotFound):
        store.accept("nobody", headers, BODY)


def test_a_source_keeps_its_secret_unless_given_one_or_changing_scheme(
    engine: Engine, box: SecretBox
) -> None:
    store = WebhookSourceStore(engine, box)
    _, made = store.put_source("gh", "github", "shared-with-github")
    assert made is None
    assert store.source_secret("gh") == "shared-with-github"
    _, kept = store.put_source("gh", "github", pipeline="repo")
    assert kept is None
    assert store.source_secret("gh") == "shared-with-github"
    headers = signatures.sign_headers("github", "shared-with-github", "d-1", 0, BODY)
    assert store.accept("gh", headers, BODY)[1] == "d-1"
    _, fresh = store.put_source("gh", "hmac-sha512")
    assert fresh is not None
    assert store.source_secret("gh") == fresh
    assert [s.source for s in store.list_sources()] == ["gh"]
    assert store.delete_source("gh") is True
    with pytest.raises(NotFound):
        store.source_secret("gh")


def test_bad_sources_are_refused(engine: Engine, box: SecretBox) -> None:
    store = WebhookSourceStore(engine, box)
    with pytest.raises(InvalidRequest, match="sha1"):
        store.put_source("x", "sha1")
    with pytest.raises(ConfigError, match="whsec_"):
        store.put_source("x", "standard-webhooks", "not-base64!")
    assert store.list_sources() == []
