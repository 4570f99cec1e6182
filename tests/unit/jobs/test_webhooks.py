"""Delivering a webhook message as a job, over fakes: signed per Standard Webhooks with a
message id that never changes, transient failures retried with growing waits, terminal
ones not, and a delivery given up parked."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from standardwebhooks.webhooks import Webhook

from pacsync.connectors.memory import MemoryDeliveryLog, MemoryJobContext, MemoryWebhookSender
from pacsync.connectors.memory.webhooks import unreachable
from pacsync.errors import ConfigError, DeliveryRefused, PacsyncError, StoreUnavailable
from pacsync.jobs.queues import WEBHOOKS
from pacsync.jobs.request import JobRequest
from pacsync.jobs.webhooks import (
    ATTEMPTS,
    KIND,
    TIMEOUT_S,
    WebhookDelivery,
    delivery_request,
    policy,
    run_webhook_job,
    valid_subscription,
)
from pacsync.ports import OutboundMessage
from pacsync.security import signatures

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = 1_790_000_000
PAYLOAD = {"type": "job.failed", "timestamp": "2026-09-21T12:00:00Z", "data": {"job_id": "j1"}}


def _ticking() -> Callable[[], float]:
    """A clock 30 s further on at every reading."""
    clock = [NOW]

    def tick() -> float:
        clock[0] += 30
        return clock[0]

    return tick


def _setup(
    script: list[int | PacsyncError] | None = None, clock: Callable[[], float] | None = None
) -> tuple[WebhookDelivery, MemoryDeliveryLog, MemoryWebhookSender]:
    log = MemoryDeliveryLog()
    url = "https://hooks.example.org/x"
    log.add(OutboundMessage(7, "msg_stable", url, PAYLOAD, "pending", SECRET))
    sender = MemoryWebhookSender(script)
    delivery = WebhookDelivery(
        log, sender, signatures.standard_headers, retry=policy(5.0), clock=clock or _ticking()
    )
    return delivery, log, sender


def _run(delivery: WebhookDelivery, ctx: MemoryJobContext | None = None) -> dict[str, object]:
    return run_webhook_job(ctx or MemoryJobContext("job-1"), delivery, delivery_request(7, "hook"))


def test_a_delivery_is_signed_per_standard_webhooks_and_recorded() -> None:
    delivery, log, sender = _setup(clock=time.time)
    outcome = _run(delivery)
    assert outcome == {"outcome": "delivered", "attempts": 1, "status": 200, "error": None}
    (sent,) = sender.sent
    assert sent.url == "https://hooks.example.org/x"
    assert sent.timeout_s == TIMEOUT_S == 10.0
    assert json.loads(sent.body) == PAYLOAD
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["webhook-id"] == "msg_stable"
    assert abs(int(sent.headers["webhook-timestamp"]) - time.time()) < 5
    assert sent.headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(sent.body, sent.headers) == PAYLOAD  # the reference library
    assert [(a.status, a.error) for a in log.attempts] == [(200, None)]
    assert log.messages[7].status == "delivered"
    assert log.parked == []


def test_503_is_retried_with_the_same_message_id_and_growing_waits() -> None:
    delivery, log, sender = _setup([503, 503, 200])
    ctx = MemoryJobContext("job-1")
    outcome = _run(delivery, ctx)
    assert outcome["outcome"] == "delivered"
    assert outcome["attempts"] == 3
    assert {s.headers["webhook-id"] for s in sender.sent} == {"msg_stable"}
    stamps = [int(s.headers["webhook-timestamp"]) for s in sender.sent]
    assert stamps == sorted(set(stamps)), "each attempt is signed at its own time"
    assert [a.status for a in log.attempts] == [503, 503, 200]
    assert all(a.retry_at is not None for a in log.attempts[:2])
    assert "PACS-302" in str(log.attempts[0].error)
    # backoff with jitter: about 5 s, then about 20 s (±25 %)
    first, second = ctx.sleeps
    assert 3.75 <= first <= 6.25
    assert 15.0 <= second <= 25.0
    assert ctx.steps == ["attempt #1", "attempt #2", "attempt #3"]


def test_400_stops_at_once_marks_the_delivery_failed_and_parks_the_job() -> None:
    delivery, log, sender = _setup([400, 200])
    ctx = MemoryJobContext("job-1")
    outcome = _run(delivery, ctx)
    assert outcome["outcome"] == "failed"
    assert outcome["attempts"] == 1
    assert outcome["status"] == 400
    assert len(sender.sent) == 1
    assert ctx.sleeps == []
    (attempt,) = log.attempts
    assert (attempt.status, attempt.retry_at) == (400, None)
    assert log.messages[7].status == "failed"
    (parked,) = log.parked
    assert parked["job_id"] == "job-1"
    assert parked["error"]["code"] == DeliveryRefused.code
    assert parked["request"]["kind"] == KIND
    assert parked["request"]["args"] == {"delivery_id": 7}
    assert [h["status"] for h in parked["history"]] == [400]


def test_an_unreachable_receiver_is_given_up_after_six_attempts() -> None:
    delivery, log, sender = _setup([unreachable() for _ in range(10)])
    ctx = MemoryJobContext("job-1")
    outcome = _run(delivery, ctx)
    assert (outcome["outcome"], outcome["attempts"]) == ("failed", ATTEMPTS)
    assert len(sender.sent) == ATTEMPTS == 6
    assert len(ctx.sleeps) == ATTEMPTS - 1
    assert all(b > a for a, b in zip(ctx.sleeps, ctx.sleeps[1:], strict=False))
    assert [a.status for a in log.attempts] == [None] * ATTEMPTS
    assert log.attempts[-1].retry_at is None
    assert log.messages[7].status == "failed"
    assert log.parked[0]["error"]["code"] == "PACS-001"
    assert len(log.parked[0]["history"]) == ATTEMPTS


def test_429_is_transient() -> None:
    delivery, log, _ = _setup([429, 202])
    assert _run(delivery)["outcome"] == "delivered"
    assert [a.status for a in log.attempts] == [429, 202]


def test_a_replayed_job_returns_recorded_attempts_and_waits_the_same() -> None:
    delivery, _, sender = _setup([503, 503, 200])
    first = MemoryJobContext("job-1")
    _run(delivery, first)
    again, _, resent = _setup([200])
    replay = MemoryJobContext("job-1", recorded=first.results[:2])  # crashed in attempt 3
    outcome = _run(again, replay)
    assert outcome["attempts"] == 3
    assert replay.ran == ["attempt #3"]
    assert replay.sleeps == first.sleeps
    assert len(resent.sent) == 1
    assert len(sender.sent) == 3


def test_a_delivered_or_missing_message_is_not_sent_again() -> None:
    delivery, log, sender = _setup()
    _run(delivery)
    assert _run(delivery)["outcome"] == "delivered"
    assert len(sender.sent) == 1
    del log.messages[7]
    assert _run(delivery)["outcome"] == "gone"
    assert len(sender.sent) == 1


def test_the_delivery_job_request_round_trips() -> None:
    request = delivery_request(42, "3f9a0c1d2e4b5a69", trigger="retry")
    assert (request.kind, request.queue, request.partition_key) == (
        KIND,
        WEBHOOKS,
        "3f9a0c1d2e4b5a69",
    )
    assert JobRequest.from_dict(request.as_dict()) == request
    old = {"kind": "sync", "pipeline": "county", "mode": "full"}  # stored before args existed
    assert JobRequest.from_dict(old).args == {}


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("job.failed", True),
        ("study.indexed", True),
        ("job.*", True),
        ("*", True),
        ("job.exploded", False),
        ("nothing.*", False),
        ("", False),
    ],
)
def test_subscriptions_name_known_events(name: str, valid: bool) -> None:
    assert valid_subscription(name) is valid


class SealedShut(MemoryDeliveryLog):
    """A delivery log whose secrets cannot be opened (another machine's key)."""

    def message(self, delivery_id: int) -> OutboundMessage | None:
        raise ConfigError("the secret key cannot open this secret")


def test_a_secret_that_will_not_open_fails_the_delivery_without_sending() -> None:
    log = SealedShut()
    log.add(OutboundMessage(7, "msg_stable", "https://x.example.org/", PAYLOAD, "pending", SECRET))
    sender = MemoryWebhookSender()
    delivery = WebhookDelivery(log, sender, signatures.standard_headers)
    outcome = _run(delivery)
    assert (outcome["outcome"], outcome["attempts"]) == ("failed", 1)
    assert sender.sent == []
    assert log.messages[7].status == "failed"
    assert log.parked[0]["error"]["code"] == "PACS-101"


def test_a_store_that_is_down_lets_the_engine_try_the_step_again() -> None:
    class Down(MemoryDeliveryLog):
        def message(self, delivery_id: int) -> OutboundMessage | None:
            raise StoreUnavailable("store: connection refused")

    delivery = WebhookDelivery(Down(), MemoryWebhookSender(), signatures.standard_headers)
    with pytest.raises(StoreUnavailable):
        delivery.attempt("job-1", 7, 1)
