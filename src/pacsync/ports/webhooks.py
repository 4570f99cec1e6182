"""The ports of outbound webhooks: sending and signing a delivery, and its log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pacsync.errors import PacsyncError


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """A receiver's answer: its status, the start of its body, and why it is a failure
    (None: delivered; a transient error for 5xx and 429, a terminal one otherwise)."""

    status: int
    body: str
    error: PacsyncError | None = None


class WebhookSender(Protocol):
    """Posts signed webhook messages over HTTP."""

    def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> WebhookResponse:
        """POST ``body`` to ``url``; the answer.  A :class:`TransientError` when none came
        (timeout, refused connection), a terminal one when the URL cannot be used."""
        ...


class WebhookSigner(Protocol):
    """The signature headers of one message (Standard Webhooks: webhook-id, -timestamp,
    -signature)."""

    def __call__(self, secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A webhook delivery ready to send; its message id is the same on every attempt."""

    delivery_id: int
    message_id: str
    url: str
    payload: Any
    status: str  # pending, delivered, failed
    secret: str = field(repr=False)


class WebhookDeliveryLog(Protocol):
    """Deliveries to send and the record of each attempt (the store's delivery log)."""

    def message(self, delivery_id: int) -> OutboundMessage | None:
        """The delivery with its webhook's URL and secret; None when either is gone or
        the webhook is disabled."""
        ...

    def delivered(self, delivery_id: int, status: int, body: str) -> None: ...

    def failed(
        self,
        delivery_id: int,
        error: str,
        status: int | None,
        body: str | None,
        retry_at: dt.datetime | None,
    ) -> None:
        """One failed attempt; another is planned at ``retry_at`` (None: given up)."""
        ...

    def park(
        self,
        job_id: str,
        request: dict[str, Any],
        error: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> None:
        """Keep a delivery job that failed for good as a dead letter."""
        ...
