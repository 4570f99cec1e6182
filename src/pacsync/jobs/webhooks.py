"""Delivering a webhook message as a durable job: signed, posted, retried, parked.

Each attempt is one recorded step: it signs the message afresh (Standard
Webhooks: the ``webhook-id`` is the delivery's message id, the same on every
attempt, so receivers drop duplicates; ``webhook-timestamp`` is the attempt's
time), posts it and records the attempt in the delivery log.  A transient
failure (no answer, 5xx, 429) is tried again after a durable sleep, with
exponential backoff and jitter, up to :data:`ATTEMPTS` attempts; a terminal one
(another 4xx) is not.  A delivery given up is marked failed and parked as a job
dead letter.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pacsync.domain.clock import utc_now
from pacsync.errors import PacsyncError
from pacsync.jobs.outcome import error_to_dict
from pacsync.jobs.queues import WEBHOOKS
from pacsync.jobs.request import JobRequest
from pacsync.jobs.retry import RetryPolicy, decide
from pacsync.ports import JobContext, WebhookDeliveryLog, WebhookSender, WebhookSigner

KIND = "webhook"
EVENTS = (
    "job.started",
    "job.completed",
    "job.failed",
    "conflict.detected",
    "dead_letter.created",
    "record.changed",
    "study.indexed",
)
ATTEMPTS = 6
TIMEOUT_S = 10.0
USER_AGENT = "pacsync-webhooks/1"


def valid_subscription(name: str) -> bool:
    """An event name, a family (``job.*``) or every event (``*``)."""
    if name == "*" or name in EVENTS:
        return True
    return name.endswith(".*") and any(e.startswith(name[:-1]) for e in EVENTS)


def policy(backoff_s: float) -> RetryPolicy:
    """Six attempts, waiting ``backoff_s`` after the first failure, then four times longer
    each time (5 s: 5 s, 20 s, 80 s, 320 s, 1280 s), at most an hour."""
    return RetryPolicy(attempts=ATTEMPTS, base_delay=backoff_s, factor=4.0, max_delay=3600.0)


def encode(payload: Any) -> bytes:
    """The body of a message: compact JSON, the same bytes on every attempt."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class WebhookDelivery:
    """Sends one delivery's attempts through the ports."""

    log: WebhookDeliveryLog
    sender: WebhookSender
    sign: WebhookSigner
    retry: RetryPolicy = field(default_factory=lambda: policy(5.0))
    timeout_s: float = TIMEOUT_S
    clock: Callable[[], float] = time.time

    def attempt(self, job_id: str, delivery_id: int, attempt: int) -> dict[str, Any]:
        """One attempt: ``{"outcome": delivered | retry | failed | gone, ...}`` with the
        wait before the next attempt (``delay``), the error and the receiver's status."""
        try:
            message = self.log.message(delivery_id)
            if message is None:
                return {"outcome": "gone", "delay": 0.0, "error": None, "status": None}
            if message.status == "delivered":  # queued twice; the first job delivered it
                return {"outcome": "delivered", "delay": 0.0, "error": None, "status": None}
            body = encode(message.payload)
            signed = self.sign(message.secret, message.message_id, int(self.clock()), body)
        except PacsyncError as unusable:  # a secret that will not open, say
            if unusable.transient:
                raise  # the step is tried again
            self.log.failed(delivery_id, str(unusable), None, None, None)
            return {
                "outcome": "failed",
                "delay": 0.0,
                "error": error_to_dict(unusable),
                "status": None,
            }
        headers = {"content-type": "application/json", "user-agent": USER_AGENT, **signed}
        status: int | None = None
        answer: str | None = None
        try:
            response = self.sender.send(message.url, body, headers, self.timeout_s)
            status, answer, error = response.status, response.body, response.error
        except PacsyncError as raised:
            error = raised
        if error is None:
            assert status is not None
            self.log.delivered(delivery_id, status, answer or "")
            return {"outcome": "delivered", "delay": 0.0, "error": None, "status": status}
        # jitter drawn from the job and attempt: the same wait however often it is replayed
        decision = decide(error, attempt, self.retry, random.Random(f"{job_id}:{attempt}").random)
        retry_at = utc_now() + dt.timedelta(seconds=decision.delay) if decision.retry else None
        self.log.failed(delivery_id, str(error), status, answer, retry_at)
        return {
            "outcome": "retry" if decision.retry else "failed",
            "delay": decision.delay,
            "error": error_to_dict(error),
            "status": status,
        }


def delivery_request(delivery_id: int, webhook_id: str, trigger: str = "event") -> JobRequest:
    """The job that delivers one message, on the webhook-delivery queue, one partition
    per webhook (so one slow receiver holds back only its own messages)."""
    return JobRequest(
        kind=KIND,
        pipeline=f"webhook:{webhook_id}",
        trigger=trigger,
        queue=WEBHOOKS,
        partition=webhook_id,
        args={"delivery_id": delivery_id},
    )


def run_webhook_job(
    ctx: JobContext, delivery: WebhookDelivery, request: JobRequest
) -> dict[str, Any]:
    """Deliver the request's message; the summary: outcome, attempts, last error."""
    delivery_id = int(request.args["delivery_id"])
    history: list[dict[str, Any]] = []
    attempt = 1
    while True:
        out = ctx.step(f"attempt #{attempt}", delivery.attempt, ctx.job_id, delivery_id, attempt)
        if out["error"] is not None:
            history.append({"attempt": attempt, "status": out["status"], **out["error"]})
        if out["outcome"] != "retry":
            break
        ctx.sleep(out["delay"])
        attempt += 1
    if out["outcome"] == "failed":
        ctx.step("park", delivery.log.park, ctx.job_id, request.as_dict(), out["error"], history)
    return {
        "outcome": out["outcome"],
        "attempts": attempt,
        "status": out["status"],
        "error": out["error"],
    }
