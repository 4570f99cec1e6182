"""Posting webhook messages with httpx; its failures translated at this edge.

==========================================  ==========================================
what happened                               error
==========================================  ==========================================
timeout, refused or broken connection       ConnectionTimeout (PACS-001, transient)
429 Too Many Requests                       RateLimited (PACS-106, transient)
408, 5xx                                    ReceiverUnavailable (PACS-302, transient)
any other status that is not 2xx            DeliveryRefused (PACS-303, terminal)
a URL httpx cannot use                      DeliveryRefused (PACS-303, terminal)
an answer that cannot be read               ReceiverUnavailable (PACS-302, transient)
==========================================  ==========================================

Messages name the receiver by scheme, host and port only: a webhook URL's path
or query often is a secret of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from pacsync.errors import (
    ConnectionTimeout,
    DeliveryRefused,
    PacsyncError,
    RateLimited,
    ReceiverUnavailable,
)
from pacsync.ports import WebhookResponse

BODY_LIMIT = 2048  # characters of an answer kept


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, nothing of its path, query or user info."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or '?'}{port}"
    except ValueError:
        return "<unparseable URL>"


def error_of(status: int, where: str) -> PacsyncError | None:
    """What an answer's status means: None for 2xx, else the error it counts as."""
    if 200 <= status < 300:
        return None
    if status == 429:
        return RateLimited(f"{where} answered 429 Too Many Requests")
    if status == 408 or status >= 500:
        return ReceiverUnavailable(f"{where} answered {status}")
    hint = (
        "The URL redirects: configure the webhook with the final URL."
        if 300 <= status < 400
        else None
    )
    return DeliveryRefused(f"{where} refused the message with {status}", hint=hint)


class HttpWebhookSender:
    """A :class:`pacsync.ports.WebhookSender` over one shared httpx client (made on first
    use; redirects are not followed, so a signed message never goes elsewhere)."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._client = client
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(follow_redirects=False)
            return self._client

    def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> WebhookResponse:
        where = f"webhook receiver {origin(url)}"
        try:
            response = self._http().post(
                url, content=body, headers=dict(headers), timeout=timeout_s
            )
        except httpx.TimeoutException as exc:
            raise ConnectionTimeout(f"{where}: no answer within {timeout_s:g} s") from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise DeliveryRefused(
                f"{where}: the URL cannot be used ({type(exc).__name__})",
                hint="Give the webhook an http(s) URL with a host.",
            ) from exc
        except httpx.TransportError as exc:
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise ConnectionTimeout(f"{where}: {reason}") from exc
        except httpx.HTTPError as exc:  # an answer that could not be read
            raise ReceiverUnavailable(f"{where}: {type(exc).__name__}") from exc
        text = response.content[: BODY_LIMIT * 4].decode("utf-8", "replace")[:BODY_LIMIT]
        return WebhookResponse(response.status_code, text, error_of(response.status_code, where))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
