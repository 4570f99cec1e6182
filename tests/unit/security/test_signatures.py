"""Webhook signatures: Standard Webhooks (checked against the reference package), GitHub,
HMAC-SHA512."""

from __future__ import annotations

import base64
import datetime as dt
import time

import pytest
from standardwebhooks import Webhook

from pacsync.errors import AuthenticationFailed, ConfigError
from pacsync.security import signatures
from pacsync.security.signatures import new_webhook_secret, sign_headers, standard_headers, verify

BODY = b'{"type":"job.completed","data":{"id":"7"}}'
NOW = 1_790_000_000


def test_new_secrets_are_whsec_and_32_random_bytes() -> None:
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_webhook_secret() != secret


def test_our_standard_headers_verify_with_the_reference_package() -> None:
    secret = new_webhook_secret()
    headers = standard_headers(secret, "msg_1", time.time(), BODY)
    assert Webhook(secret).verify(BODY, headers) == {"type": "job.completed", "data": {"id": "7"}}


def test_the_reference_package_signature_verifies_with_ours() -> None:
    secret = new_webhook_secret()
    sent = dt.datetime.fromtimestamp(NOW, dt.UTC)
    headers = {
        "Webhook-Id": "msg_2",
        "Webhook-Timestamp": str(NOW),
        "Webhook-Signature": Webhook(secret).sign("msg_2", sent, BODY.decode()),
    }
    assert verify("standard-webhooks", secret, headers, BODY, now=NOW + 10) == "msg_2"


def test_one_matching_signature_among_several_is_enough() -> None:
    secret = new_webhook_secret()
    headers = standard_headers(secret, "msg_3", NOW, BODY)
    other = standard_headers(new_webhook_secret(), "msg_3", NOW, BODY)["webhook-signature"]
    headers["webhook-signature"] = f"v2,xyz {other} {headers['webhook-signature']}"
    assert verify("standard-webhooks", secret, headers, BODY, now=NOW) == "msg_3"


@pytest.mark.parametrize(
    ("scheme", "secret"),
    [("standard-webhooks", new_webhook_secret()), ("github", "gh"), ("hmac-sha512", "k")],
)
def test_every_scheme_verifies_what_it_signs_and_refuses_a_changed_body(
    scheme: str, secret: str
) -> None:
    headers = sign_headers(scheme, secret, "id-1", NOW, BODY)
    assert verify(scheme, secret, headers, BODY, now=NOW) == "id-1"
    with pytest.raises(AuthenticationFailed, match="does not match") as caught:
        verify(scheme, secret, headers, BODY + b" ", now=NOW)
    assert "secret" in caught.value.hint
    wrong = new_webhook_secret() if scheme == "standard-webhooks" else secret + "x"
    with pytest.raises(AuthenticationFailed, match="does not match"):
        verify(scheme, wrong, headers, BODY, now=NOW)


def test_github_signature_matches_githubs_documented_example() -> None:
    headers = {
        "X-Hub-Signature-256": "sha256="
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }
    secret = "It's a Secret to Everybody"
    message_id = verify("github", secret, headers, b"Hello, World!", now=NOW)
    assert message_id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def test_github_needs_no_timestamp_and_ignores_the_clock() -> None:
    headers = sign_headers("github", "gh", "d-1", NOW, BODY)
    assert verify("github", "gh", headers, BODY, now=NOW + 86_400) == "d-1"


@pytest.mark.parametrize(
    ("scheme", "secret", "header"),
    [
        ("standard-webhooks", new_webhook_secret(), "webhook-timestamp"),
        ("hmac-sha512", "k", "X-Timestamp"),
    ],
)
@pytest.mark.parametrize(("skew", "word"), [(-301, "old"), (301, "future")])
def test_timestamps_more_than_five_minutes_off_are_refused(
    scheme: str, secret: str, header: str, skew: int, word: str
) -> None:
    headers = sign_headers(scheme, secret, "id-1", NOW + skew, BODY)
    with pytest.raises(AuthenticationFailed, match=word) as caught:
        verify(scheme, secret, headers, BODY, now=NOW)
    assert header.lower() in caught.value.hint.lower()
    edge = sign_headers(scheme, secret, "id-1", NOW + (300 if skew > 0 else -300), BODY)
    assert verify(scheme, secret, edge, BODY, now=NOW) == "id-1"


@pytest.mark.parametrize(
    ("scheme", "secret", "header"),
    [
        ("standard-webhooks", new_webhook_secret(), "webhook-id"),
        ("standard-webhooks", new_webhook_secret(), "webhook-signature"),
        ("standard-webhooks", new_webhook_secret(), "webhook-timestamp"),
        ("github", "gh", "X-Hub-Signature-256"),
        ("github", "gh", "X-GitHub-Delivery"),
        ("hmac-sha512", "k", "X-Signature"),
        ("hmac-sha512", "k", "X-Timestamp"),
        ("hmac-sha512", "k", "X-Request-Id"),
    ],
)
def test_a_missing_header_is_named(scheme: str, secret: str, header: str) -> None:
    headers = sign_headers(scheme, secret, "id-1", NOW, BODY)
    del headers[header]
    with pytest.raises(AuthenticationFailed, match=header.lower()):
        verify(scheme, secret, headers, BODY, now=NOW)


def test_a_timestamp_that_is_not_a_number_is_refused() -> None:
    headers = sign_headers("hmac-sha512", "k", "id-1", NOW, BODY)
    headers["X-Timestamp"] = "yesterday"
    with pytest.raises(AuthenticationFailed, match="unix seconds"):
        verify("hmac-sha512", "k", headers, BODY, now=NOW)


def test_naive_datetimes_are_utc() -> None:
    sent = dt.datetime.fromtimestamp(NOW, dt.UTC).replace(tzinfo=None)
    assert standard_headers(new_webhook_secret(), "m", sent, BODY)["webhook-timestamp"] == str(NOW)


def test_unknown_schemes_and_bad_secrets_are_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="sha1"):
        verify("sha1", "k", {}, BODY, now=NOW)
    with pytest.raises(ConfigError, match="whsec_"):
        standard_headers("whsec_", "m", NOW, BODY)
    assert signatures.SCHEMES == ("standard-webhooks", "github", "hmac-sha512")
