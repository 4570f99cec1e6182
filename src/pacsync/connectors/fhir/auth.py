"""SMART Backend Services authorization: a signed JWT client assertion exchanged for an
access token (OAuth2 client_credentials with private_key_jwt).

The assertion is signed RS384 (ES384 for an EC key) with ``iss`` = ``sub`` = the client
id, ``aud`` = the token URL, ``exp`` at most five minutes ahead and a fresh random
``jti``; the token it buys is kept until shortly before it expires.  The private key
comes from a PEM file or from the connection's sealed secret (its PEM text).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pacsync.connectors.fhir.outcomes import diagnostics, error_for, transport_errors
from pacsync.errors import ConfigError, FhirAuthRejected, FhirProtocolError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME_S = 300  # SMART: exp no more than five minutes in the future
ASSERTION_LIFETIME_S = 240
EARLY_REFRESH_S = 30  # a cached token is renewed this long before it expires
DEFAULT_TOKEN_LIFETIME_S = 300  # when the token response has no expires_in

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def load_private_key(pem: bytes | str, where: str = "the key") -> PrivateKey:
    """An RSA or EC private key from PEM (unencrypted); ConfigError otherwise."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"{where} is not an unencrypted PEM private key: {error}",
            hint="Give an RSA (2048+ bits) or EC P-384 private key in PEM, without a passphrase.",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{where} is a {type(key).__name__}; use an RSA or EC key")
    return key


def key_from_file(path: str | Path) -> PrivateKey:
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"cannot read the private key {file}: {error.strerror}",
            hint="Check the connection's key_path and the file's permissions.",
        ) from None
    return load_private_key(data, str(file))


def algorithm(key: PrivateKey) -> str:
    return "RS384" if isinstance(key, rsa.RSAPrivateKey) else "ES384"


def public_jwks(key: PrivateKey, kid: str | None = None) -> dict[str, Any]:
    """The JWKS document of ``key``'s public half (what the server registers)."""
    alg = jwt.get_algorithm_by_name(algorithm(key))
    jwk: dict[str, Any] = json.loads(alg.to_jwk(key.public_key()))
    jwk.update({"alg": algorithm(key), "use": "sig"})
    if kid:
        jwk["kid"] = kid
    return {"keys": [jwk]}


@dataclass(frozen=True)
class ClientAssertion:
    """What signs the assertions of one client towards one token endpoint."""

    client_id: str
    token_url: str
    key: PrivateKey
    kid: str | None = None
    lifetime_s: int = ASSERTION_LIFETIME_S

    def __post_init__(self) -> None:
        if not 0 < self.lifetime_s <= MAX_ASSERTION_LIFETIME_S:
            raise ConfigError(
                f"a client assertion lives at most {MAX_ASSERTION_LIFETIME_S} s, "
                f"not {self.lifetime_s}"
            )

    def claims(self, now: float) -> dict[str, Any]:
        return {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "iat": int(now),
            "exp": int(now) + self.lifetime_s,
            "jti": secrets.token_urlsafe(24),
        }

    def sign(self, now: float) -> str:
        headers = {"typ": "JWT"}
        if self.kid:
            headers["kid"] = self.kid
        return jwt.encode(
            self.claims(now), self.key, algorithm=algorithm(self.key), headers=headers
        )


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # on the source's clock
    scope: str


class TokenSource:
    """Access tokens for one client: fetched when needed, reused until
    ``EARLY_REFRESH_S`` before they expire, dropped on :meth:`invalidate` (a 401)."""

    def __init__(
        self,
        assertion: ClientAssertion,
        scope: str,
        http: httpx.Client,
        *,
        clock: Callable[[], float] = time.time,
        connection: str | None = None,
    ) -> None:
        self.assertion = assertion
        self.scope = scope
        self.http = http
        self.clock = clock
        self.connection = connection
        self.fetched = 0  # tokens obtained so far (tests, the check command)
        self._token: AccessToken | None = None
        self._lock = threading.Lock()

    def token(self) -> AccessToken:
        with self._lock:
            now = self.clock()
            if self._token is None or now >= self._token.expires_at - EARLY_REFRESH_S:
                self._token = self._fetch(now)
            return self._token

    def invalidate(self, value: str | None = None) -> None:
        """Forget the cached token (only if it is still ``value``, when given)."""
        with self._lock:
            if self._token is not None and (value is None or self._token.value == value):
                self._token = None

    def _fetch(self, now: float) -> AccessToken:
        url = self.assertion.token_url
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion.sign(now),
        }
        with transport_errors(f"POST {url}", self.connection):
            response = self.http.post(url, data=form, headers={"Accept": "application/json"})
        if response.status_code in (400, 401, 403):  # RFC 6749: invalid_client, invalid_scope…
            raise FhirAuthRejected(
                f"the token endpoint refused client '{self.assertion.client_id}': HTTP "
                f"{response.status_code}: {_said(response)}",
                connection=self.connection,
            )
        if response.status_code >= 400:
            raise error_for(response, f"POST {url}", self.connection)
        try:
            body = response.json()
            value = str(body["access_token"])
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME_S)
        except (ValueError, KeyError, TypeError):
            raise FhirProtocolError(
                f"the token endpoint {url} answered without an access_token",
                connection=self.connection,
            ) from None
        self.fetched += 1
        return AccessToken(value, now + lifetime, str(body.get("scope") or self.scope))


def _said(response: httpx.Response) -> str:
    try:
        return diagnostics(response.json()) or response.reason_phrase
    except ValueError:
        return response.reason_phrase
