"""In-memory fakes of the webhook ports: a scripted receiver and a delivery log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pacsync.connectors.http.webhooks import error_of
from pacsync.errors import ConnectionTimeout, PacsyncError
from pacsync.ports import OutboundMessage, WebhookResponse


@dataclass(frozen=True)
class Sent:
    url: str
    body: bytes
    headers: dict[str, str]
    timeout_s: float


class MemoryWebhookSender:
    """A :class:`pacsync.ports.WebhookSender` answering from a script: each entry is a
    status code (read as the HTTP connector reads it) or an error to raise; once the
    script runs out every answer is 200.  ``sent`` lists what was posted."""

    def __init__(self, script: list[int | PacsyncError] | None = None) -> None:
        self.script = list(script or [])
        self.sent: list[Sent] = []

    def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> WebhookResponse:
        self.sent.append(Sent(url, body, dict(headers), timeout_s))
        answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, PacsyncError):
            raise answer
        return WebhookResponse(answer, f"answer {answer}", error_of(answer, "receiver"))


def unreachable() -> ConnectionTimeout:
    """What a sender raises when the receiver does not answer."""
    return ConnectionTimeout("webhook receiver http://127.0.0.1:9: connection refused")


@dataclass
class Attempt:
    delivery_id: int
    status: int | None
    error: str | None
    retry_at: dt.datetime | None


@dataclass
class MemoryDeliveryLog:
    """A :class:`pacsync.ports.WebhookDeliveryLog` over a dictionary of messages;
    ``attempts`` and ``parked`` record what the use case did."""

    messages: dict[int, OutboundMessage] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    parked: list[dict[str, Any]] = field(default_factory=list)

    def add(self, message: OutboundMessage) -> None:
        self.messages[message.delivery_id] = message

    def message(self, delivery_id: int) -> OutboundMessage | None:
        return self.messages.get(delivery_id)

    def delivered(self, delivery_id: int, status: int, body: str) -> None:
        self.attempts.append(Attempt(delivery_id, status, None, None))
        self.messages[delivery_id] = replace(self.messages[delivery_id], status="delivered")

    def failed(
        self,
        delivery_id: int,
        error: str,
        status: int | None,
        body: str | None,
        retry_at: dt.datetime | None,
    ) -> None:
        self.attempts.append(Attempt(delivery_id, status, error, retry_at))
        state = "pending" if retry_at is not None else "failed"
        self.messages[delivery_id] = replace(self.messages[delivery_id], status=state)

    def park(
        self,
        job_id: str,
        request: dict[str, Any],
        error: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> None:
        self.parked.append(
            {"job_id": job_id, "request": request, "error": error, "history": history}
        )
