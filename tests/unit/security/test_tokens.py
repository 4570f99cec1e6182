"""Bearer JWTs: HS256 with a shared secret, RS256 against a JWKS served on loopback."""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from pacsync.config import Settings
from pacsync.domain.access import Principal, Role
from pacsync.errors import AuthenticationFailed, ConfigError, ConnectionTimeout
from pacsync.security.tokens import JwtVerifier

SECRET = "a-shared-secret-of-at-least-32-bytes!!"


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "alice", "exp": int(time.time()) + 300, "role": "operator"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def hs256(**changes: Any) -> str:
    return jwt.encode(claims(**changes), SECRET, algorithm="HS256")


# -- HS256 ------------------------------------------------------------------------------------


def test_a_valid_hs256_token_names_the_caller_and_role() -> None:
    principal = JwtVerifier(SECRET).verify(hs256())
    assert principal == Principal(subject="jwt:alice", role=Role.OPERATOR)


def test_without_a_role_claim_the_caller_is_a_viewer() -> None:
    assert JwtVerifier(SECRET).verify(hs256(role=None)).role is Role.VIEWER


def test_the_highest_known_of_several_roles_counts() -> None:
    token = hs256(role=None, roles=["offline_access", "viewer", "admin", "operator"])
    assert JwtVerifier(SECRET).verify(token).role is Role.ADMIN


@pytest.mark.parametrize(
    "changes",
    [{"role": "root"}, {"role": None, "roles": ["offline_access"]}, {"role": None, "roles": "x"}],
)
def test_unknown_roles_are_refused_with_a_hint(changes: dict[str, Any]) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        JwtVerifier(SECRET).verify(hs256(**changes))
    assert "role" in caught.value.hint


def test_an_expired_token_is_refused_but_30_s_of_clock_skew_is_forgiven() -> None:
    verifier = JwtVerifier(SECRET)
    assert verifier.verify(hs256(exp=int(time.time()) - 20)).subject == "jwt:alice"
    with pytest.raises(AuthenticationFailed, match="expired"):
        verifier.verify(hs256(exp=int(time.time()) - 60))


@pytest.mark.parametrize("missing", ["exp", "sub"])
def test_exp_and_sub_are_required(missing: str) -> None:
    with pytest.raises(AuthenticationFailed, match=missing):
        JwtVerifier(SECRET).verify(hs256(**{missing: None}))


def test_a_token_signed_with_another_secret_is_forged() -> None:
    forged = jwt.encode(claims(role="admin"), "another-secret-of-32-bytes-or-more!!", "HS256")
    with pytest.raises(AuthenticationFailed, match="signature"):
        JwtVerifier(SECRET).verify(forged)


def test_an_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode(claims(role="admin"), None, algorithm="none")
    with pytest.raises(AuthenticationFailed, match="'none' is not accepted"):
        JwtVerifier(SECRET).verify(unsigned)


def test_a_payload_changed_after_signing_is_refused() -> None:
    header, _, signature = hs256(role="viewer").split(".")
    payload = jwt.utils.base64url_encode(json.dumps(claims(role="admin")).encode()).decode()
    with pytest.raises(AuthenticationFailed):
        JwtVerifier(SECRET).verify(f"{header}.{payload}.{signature}")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "psk_0123456789abcdef_x"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthenticationFailed):
        JwtVerifier(SECRET).verify(token)


def test_audience_and_issuer_are_checked_when_configured() -> None:
    verifier = JwtVerifier(SECRET, audience="pacsync", issuer="https://idp.example")
    good = hs256(aud="pacsync", iss="https://idp.example")
    assert verifier.verify(good).subject == "jwt:alice"
    for bad, what in [
        (hs256(aud="other", iss="https://idp.example"), "audience"),
        (hs256(aud="pacsync", iss="https://evil.example"), "issuer"),
        (hs256(iss="https://idp.example"), "aud"),
        (hs256(aud="pacsync"), "iss"),
    ]:
        with pytest.raises(AuthenticationFailed, match=what):
            verifier.verify(bad)


def test_an_audience_in_the_token_is_ignored_when_none_is_configured() -> None:
    assert JwtVerifier(SECRET).verify(hs256(aud="anything")).role is Role.OPERATOR


def test_settings_without_jwt_configure_no_verifier() -> None:
    assert JwtVerifier.from_settings(Settings(_env_file=None)) is None  # type: ignore[call-arg]
    configured = JwtVerifier.from_settings(
        Settings(_env_file=None, jwt_secret=SECRET, jwt_audience="pacsync")  # type: ignore[call-arg]
    )
    assert configured is not None
    assert configured.verify(hs256(aud="pacsync")).subject == "jwt:alice"


# -- RS256 via JWKS ---------------------------------------------------------------------------


class Jwks:
    """A JWKS endpoint on loopback that counts its requests."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.requests = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.requests += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
def jwks(signing_key: rsa.RSAPrivateKey) -> Iterator[Jwks]:
    server = Jwks([public_jwk(signing_key, "k1")])
    yield server
    server.close()


def rs256(key: rsa.RSAPrivateKey, kid: str = "k1", **changes: Any) -> str:
    return jwt.encode(claims(**changes), key, algorithm="RS256", headers={"kid": kid})


def test_an_rs256_token_verifies_against_the_jwks_fetched_once(
    jwks: Jwks, signing_key: rsa.RSAPrivateKey
) -> None:
    verifier = JwtVerifier(jwks_url=jwks.url, issuer="https://idp.example")
    for role in ("viewer", "admin"):
        token = rs256(signing_key, role=role, iss="https://idp.example")
        assert verifier.verify(token) == Principal(subject="jwt:alice", role=Role(role))
    assert jwks.requests == 1


def test_a_token_from_another_rsa_key_is_forged(jwks: Jwks) -> None:
    with pytest.raises(AuthenticationFailed, match="signature"):
        JwtVerifier(jwks_url=jwks.url).verify(rs256(rsa_key()))


def test_an_unknown_kid_is_refused(jwks: Jwks) -> None:
    with pytest.raises(AuthenticationFailed, match="kid") as caught:
        JwtVerifier(jwks_url=jwks.url).verify(rs256(rsa_key(), kid="k9"))
    assert "retired key" in caught.value.hint


def test_hs256_signed_with_the_public_key_is_not_accepted_as_rs256(
    jwks: Jwks, signing_key: rsa.RSAPrivateKey
) -> None:
    pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = jwt.utils.base64url_encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode()
    )
    payload = jwt.utils.base64url_encode(json.dumps(claims(role="admin")).encode())
    signing_input = header + b"." + payload
    signature = jwt.utils.base64url_encode(hmac.digest(pem, signing_input, "sha256"))
    confused = (signing_input + b"." + signature).decode()
    with pytest.raises(AuthenticationFailed, match="'HS256' is not accepted"):
        JwtVerifier(jwks_url=jwks.url).verify(confused)
    with pytest.raises(AuthenticationFailed):  # and never checked with the PEM as HMAC key
        JwtVerifier(hs256_secret=SECRET, jwks_url=jwks.url).verify(confused)


def test_an_rs256_token_is_not_accepted_when_only_hs256_is_configured(
    signing_key: rsa.RSAPrivateKey,
) -> None:
    with pytest.raises(AuthenticationFailed, match="'RS256' is not accepted"):
        JwtVerifier(SECRET).verify(rs256(signing_key))


def test_a_jwks_that_cannot_be_fetched_is_a_transient_error(
    signing_key: rsa.RSAPrivateKey,
) -> None:
    server = Jwks([])
    url = server.url
    server.close()  # nothing listens on the port any more
    with pytest.raises(ConnectionTimeout) as caught:
        JwtVerifier(jwks_url=url, jwks_timeout_s=1).verify(rs256(signing_key))
    assert caught.value.transient
    assert "PACSYNC_JWT_JWKS_URL" in caught.value.hint


def test_a_jwks_url_that_is_not_http_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="JWKS"):
        JwtVerifier(jwks_url="file:///etc/passwd")
