"""SMART Backend Services: the client assertion's claims and signature, the token cache
and its expiry, a refused client."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pacsync.connectors.fhir.auth import (
    ASSERTION_TYPE,
    EARLY_REFRESH_S,
    ClientAssertion,
    TokenSource,
    key_from_file,
    load_private_key,
    public_jwks,
)
from pacsync.errors import ConfigError, FhirAuthRejected, FhirProtocolError

TOKEN_URL = "https://ehr.example.org/oauth2/token"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TokenEndpoint:
    """A token endpoint that checks the assertion like a SMART server and records it."""

    def __init__(self, key: rsa.RSAPrivateKey, lifetime: int = 300, status: int = 200) -> None:
        self.public = key.public_key()
        self.lifetime = lifetime
        self.status = status
        self.claims: list[dict[str, Any]] = []
        self.headers: list[dict[str, Any]] = []
        self.forms: list[dict[str, list[str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        self.forms.append(form)
        if self.status != 200:
            body = {"error": "invalid_client", "error_description": "unknown key"}
            return httpx.Response(self.status, json=body)
        assertion = form["client_assertion"][0]
        self.headers.append(jwt.get_unverified_header(assertion))
        claims = jwt.decode(
            assertion,
            self.public,
            algorithms=["RS384"],
            audience=TOKEN_URL,
            options={"verify_exp": False, "verify_iat": False},
        )
        self.claims.append(claims)
        token = f"token-{len(self.claims)}"
        return httpx.Response(200, json={"access_token": token, "expires_in": self.lifetime})


def _source(
    key: rsa.RSAPrivateKey, endpoint: TokenEndpoint, clock: Clock, kid: str | None = None
) -> TokenSource:
    http = httpx.Client(transport=httpx.MockTransport(endpoint))
    assertion = ClientAssertion("pacsync-backend", TOKEN_URL, key, kid=kid)
    return TokenSource(assertion, "system/*.read", http, clock=clock)


def test_the_assertion_says_who_we_are_to_whom_for_at_most_five_minutes(
    key: rsa.RSAPrivateKey,
) -> None:
    endpoint, clock = TokenEndpoint(key), Clock()
    source = _source(key, endpoint, clock, kid="2026-11")

    assert source.token().value == "token-1"

    (claims,) = endpoint.claims
    assert claims["iss"] == claims["sub"] == "pacsync-backend"
    assert claims["aud"] == TOKEN_URL
    assert 0 < claims["exp"] - clock.now <= 300
    assert claims["jti"]
    assert endpoint.headers[0]["alg"] == "RS384"
    assert endpoint.headers[0]["kid"] == "2026-11"
    (form,) = endpoint.forms
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_assertion_type"] == [ASSERTION_TYPE]
    assert form["scope"] == ["system/*.read"]


def test_every_assertion_has_its_own_jti(key: rsa.RSAPrivateKey) -> None:
    assertion = ClientAssertion("c", TOKEN_URL, key)
    jtis = {assertion.claims(time.time())["jti"] for _ in range(50)}
    assert len(jtis) == 50


def test_an_assertion_living_longer_than_five_minutes_is_refused(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ConfigError, match="at most 300 s"):
        ClientAssertion("c", TOKEN_URL, key, lifetime_s=301)


def test_the_token_is_reused_until_shortly_before_it_expires(key: rsa.RSAPrivateKey) -> None:
    endpoint, clock = TokenEndpoint(key, lifetime=300), Clock()
    source = _source(key, endpoint, clock)

    first = source.token()
    clock.now += 300 - EARLY_REFRESH_S - 1
    assert source.token() == first
    assert source.fetched == 1

    clock.now += 2  # inside the early-refresh margin: a new one
    second = source.token()
    assert second.value == "token-2"
    assert source.fetched == 2
    assert endpoint.claims[0]["jti"] != endpoint.claims[1]["jti"]


def test_invalidate_drops_only_the_token_it_names(key: rsa.RSAPrivateKey) -> None:
    endpoint, clock = TokenEndpoint(key), Clock()
    source = _source(key, endpoint, clock)
    first = source.token()

    source.invalidate("some-older-token")
    assert source.token() == first

    source.invalidate(first.value)
    assert source.token().value == "token-2"


def test_a_refused_client_is_a_terminal_auth_error_with_the_servers_reason(
    key: rsa.RSAPrivateKey,
) -> None:
    source = _source(key, TokenEndpoint(key, status=401), Clock())

    with pytest.raises(FhirAuthRejected) as caught:
        source.token()

    assert caught.value.code == "PACS-701"
    assert not caught.value.transient
    assert "invalid_client" in caught.value.message
    assert "JWKS" in caught.value.hint


def test_a_token_answer_without_access_token_is_a_protocol_error(key: rsa.RSAPrivateKey) -> None:
    http = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, json={})))
    source = TokenSource(ClientAssertion("c", TOKEN_URL, key), "system/*.read", http)

    with pytest.raises(FhirProtocolError, match="access_token"):
        source.token()


def test_keys_load_from_pem_files_and_text(tmp_path: Any, key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(_pem(key))
    loaded = key_from_file(path)
    assert loaded.private_numbers() == key.private_numbers()  # type: ignore[union-attr]

    ec_key = ec.generate_private_key(ec.SECP384R1())
    assert public_jwks(load_private_key(_pem(ec_key)))["keys"][0]["alg"] == "ES384"
    jwk = public_jwks(key, kid="k1")["keys"][0]
    assert (jwk["kty"], jwk["alg"], jwk["kid"]) == ("RSA", "RS384", "k1")
    assert not {"d", "p", "q"} & set(jwk)  # the public half only


def test_unreadable_keys_are_config_errors(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        key_from_file(tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        load_private_key(b"-----BEGIN NOTHING-----")
