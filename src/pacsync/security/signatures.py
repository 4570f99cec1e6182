"""Signed webhooks: Standard Webhooks, GitHub's X-Hub-Signature-256 and plain HMAC-SHA512.

=================  ===========================================  ================  ==============
scheme             signature header                             timestamp header  message id
=================  ===========================================  ================  ==============
standard-webhooks  ``webhook-signature: v1,<b64 HMAC-SHA256 of  webhook-timestamp webhook-id
                   id.timestamp.body>`` (secret ``whsec_<b64>``)
github             ``X-Hub-Signature-256: sha256=<hex>``         (none)            X-GitHub-Delivery
hmac-sha512        ``X-Signature: <hex HMAC-SHA512 of body>``   X-Timestamp       X-Request-Id
=================  ===========================================  ================  ==============

:func:`verify` returns the message id, which the caller remembers to refuse replays.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import secrets
from collections.abc import Mapping
from typing import Literal

from pacsync.errors import AuthenticationFailed, ConfigError

Scheme = Literal["standard-webhooks", "github", "hmac-sha512"]
SCHEMES: tuple[Scheme, ...] = ("standard-webhooks", "github", "hmac-sha512")
TOLERANCE_S = 300
WHSEC_PREFIX = "whsec_"

Instant = dt.datetime | float | int


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes, base64."""
    return WHSEC_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def standard_headers(secret: str, msg_id: str, timestamp: Instant, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one outbound message."""
    stamp = str(_seconds(timestamp))
    digest = hmac.digest(_whsec_key(secret), f"{msg_id}.{stamp}.".encode() + body, "sha256")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }


def sign_headers(
    scheme: str, secret: str, msg_id: str, timestamp: Instant, body: bytes
) -> dict[str, str]:
    """The headers a sender using ``scheme`` would add to ``body``."""
    if scheme == "standard-webhooks":
        return standard_headers(secret, msg_id, timestamp, body)
    if scheme == "github":
        signature = hmac.digest(secret.encode(), body, "sha256").hex()
        return {"X-Hub-Signature-256": f"sha256={signature}", "X-GitHub-Delivery": msg_id}
    if scheme == "hmac-sha512":
        return {
            "X-Signature": hmac.digest(secret.encode(), body, "sha512").hex(),
            "X-Timestamp": str(_seconds(timestamp)),
            "X-Request-Id": msg_id,
        }
    raise _unknown(scheme)


def verify(
    scheme: str,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: Instant,
    tolerance_s: int = TOLERANCE_S,
) -> str:
    """The message id of a correctly signed, fresh message; AuthenticationFailed naming
    the header at fault otherwise."""
    lower = {k.lower(): v for k, v in headers.items()}
    if scheme == "standard-webhooks":
        return _verify_standard(secret, lower, body, now, tolerance_s)
    if scheme == "github":
        msg_id = _header(lower, "x-github-delivery")
        expected = "sha256=" + hmac.digest(secret.encode(), body, "sha256").hex()
        _compare(expected, _header(lower, "x-hub-signature-256"), "X-Hub-Signature-256")
        return msg_id
    if scheme == "hmac-sha512":
        msg_id = _header(lower, "x-request-id")
        _fresh(lower, "x-timestamp", now, tolerance_s)
        expected = hmac.digest(secret.encode(), body, "sha512").hex()
        _compare(expected, _header(lower, "x-signature"), "X-Signature")
        return msg_id
    raise _unknown(scheme)


def _verify_standard(
    secret: str, headers: Mapping[str, str], body: bytes, now: Instant, tolerance_s: int
) -> str:
    msg_id = _header(headers, "webhook-id")
    stamp = _fresh(headers, "webhook-timestamp", now, tolerance_s)
    expected = hmac.digest(_whsec_key(secret), f"{msg_id}.{stamp}.".encode() + body, "sha256")
    for entry in _header(headers, "webhook-signature").split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(expected, _b64(signature)):
            return msg_id
    raise _mismatch("webhook-signature")


def _compare(expected_hex: str, offered: str, header: str) -> None:
    if not hmac.compare_digest(expected_hex.encode(), offered.strip().lower().encode()):
        raise _mismatch(header)


def _whsec_key(secret: str) -> bytes:
    encoded = secret.removeprefix(WHSEC_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ConfigError(
            "a Standard Webhooks secret must be whsec_ and base64",
            hint="Use the whsec_… secret shown when the webhook was created, or the sender's.",
        )
    return key


def _seconds(instant: Instant) -> int:
    if isinstance(instant, dt.datetime):
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=dt.UTC)
        return int(instant.timestamp())
    return int(instant)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise AuthenticationFailed(
            f"the webhook has no {name} header",
            hint=f"The sender must send {name}; check the source's signing scheme.",
        )
    return value


def _fresh(headers: Mapping[str, str], name: str, now: Instant, tolerance_s: int) -> str:
    value = _header(headers, name)
    try:
        stamp = int(value)
    except ValueError:
        raise AuthenticationFailed(
            f"the webhook's {name} header is not unix seconds",
            hint=f"{name} must be the send time in seconds since 1970.",
        ) from None
    skew = stamp - _seconds(now)
    if abs(skew) > tolerance_s:
        side = "old" if skew < 0 else "far in the future"
        raise AuthenticationFailed(
            f"the webhook's {name} is {abs(skew)} s {side} (limit {tolerance_s} s)",
            hint=f"Check {name} and the sender's clock; replayed messages are refused.",
        )
    return value


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _mismatch(header: str) -> AuthenticationFailed:
    return AuthenticationFailed(
        f"the webhook's {header} does not match its body",
        hint=f"Check the shared secret of this source; {header} was computed with another one "
        "or the body was changed on the way.",
    )


def _unknown(scheme: str) -> ConfigError:
    return ConfigError(
        f"unknown webhook signature scheme '{scheme}'",
        hint=f"Use one of: {', '.join(SCHEMES)}.",
    )
