"""Bearer JWTs: HS256 with a shared secret, RS256 with keys from the issuer's JWKS.

Each algorithm is accepted only when its key is configured and is checked only
with its own kind of key, so ``none`` and HS256-signed-with-the-public-key
tokens never pass.  ``exp`` and ``sub`` are required; ``aud`` and ``iss`` are
checked when configured; clocks may differ by 30 seconds.  The caller's role
comes from the ``role`` claim, or the highest known one in ``roles``.
"""

from __future__ import annotations

from typing import Any

import jwt

from pacsync.config import Settings
from pacsync.domain.access import Principal, Role
from pacsync.errors import AuthenticationFailed, ConfigError, ConnectionTimeout

LEEWAY_S = 30
JWKS_TIMEOUT_S = 5
JWKS_LIFESPAN_S = 300  # the fetched key set is kept this long
_TOKEN_HINT = "Get a new token from the identity provider, or use an API key (psk_…)."
_ROLE_HINT = "Give the token a 'role' claim of viewer, operator or admin."


def _failed(message: str, hint: str = _TOKEN_HINT) -> AuthenticationFailed:
    return AuthenticationFailed(message, hint=hint)


class JwtVerifier:
    def __init__(
        self,
        hs256_secret: str | None = None,
        jwks_url: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        *,
        jwks_timeout_s: float = JWKS_TIMEOUT_S,
    ) -> None:
        self.hs256_secret = hs256_secret or None
        self.jwks_url = jwks_url or None
        self.audience = audience or None
        self.issuer = issuer or None
        self._jwks: jwt.PyJWKClient | None = None
        if self.jwks_url:
            try:
                self._jwks = jwt.PyJWKClient(
                    self.jwks_url, cache_keys=True, lifespan=JWKS_LIFESPAN_S, timeout=jwks_timeout_s
                )
            except jwt.PyJWKClientError as exc:
                raise ConfigError(
                    f"PACSYNC_JWT_JWKS_URL is not usable: {exc}",
                    hint="Give the http(s) URL of the identity provider's JWKS.",
                ) from None

    def __repr__(self) -> str:
        return f"JwtVerifier(hs256={self.hs256_secret is not None}, jwks_url={self.jwks_url!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtVerifier | None:
        """The verifier the settings describe, or None when no JWT issuer is configured."""
        if not settings.jwt_secret and not settings.jwt_jwks_url:
            return None
        return cls(
            settings.jwt_secret, settings.jwt_jwks_url, settings.jwt_audience, settings.jwt_issuer
        )

    @property
    def algorithms(self) -> list[str]:
        return [alg for alg, on in (("HS256", self.hs256_secret), ("RS256", self._jwks)) if on]

    def verify(self, token: str) -> Principal:
        """The caller a valid token names; AuthenticationFailed (PACS-002) otherwise."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise _failed("the bearer token is not a well-formed JWT") from None
        if algorithm not in self.algorithms:
            accepted = ", ".join(self.algorithms) or "none configured"
            raise _failed(
                f"JWT algorithm {algorithm!r} is not accepted (accepted: {accepted})",
                hint="Sign tokens with HS256 (PACSYNC_JWT_SECRET) or RS256 "
                "(PACSYNC_JWT_JWKS_URL), as configured.",
            )
        claims = self._decode(token, algorithm)
        return Principal(subject=f"jwt:{claims['sub']}", role=_role(claims))

    def _decode(self, token: str, algorithm: str) -> dict[str, Any]:
        required = ["exp", "sub"]
        if self.audience:
            required.append("aud")
        if self.issuer:
            required.append("iss")
        try:
            key: Any = self.hs256_secret if algorithm == "HS256" else self._signing_key(token)
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": required, "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise _failed("the bearer token has expired") from None
        except jwt.InvalidAudienceError:
            raise _failed(f"the bearer token is not for audience {self.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise _failed(f"the bearer token is not from issuer {self.issuer!r}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _failed(f"the bearer token has no '{exc.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise _failed("the bearer token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise _failed(f"the bearer token is not valid: {type(exc).__name__}") from None

    def _signing_key(self, token: str) -> Any:
        assert self._jwks is not None
        try:
            return self._jwks.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError:
            raise ConnectionTimeout(
                f"cannot fetch the JWKS from {self.jwks_url}",
                hint="Check PACSYNC_JWT_JWKS_URL and that the identity provider is reachable.",
            ) from None
        except jwt.PyJWKClientError:
            raise _failed(
                "no key in the issuer's JWKS matches the bearer token's 'kid'",
                hint="The token was signed by another issuer or with a retired key.",
            ) from None


def _role(claims: dict[str, Any]) -> Role:
    if "role" in claims:
        role = Role.parse(str(claims["role"]))
        if role is None:
            raise _failed(f"unknown role {str(claims['role'])[:40]!r} in the token", _ROLE_HINT)
        return role
    names = claims.get("roles")
    if names is None:
        return Role.VIEWER
    if not isinstance(names, list):
        raise _failed("the token's 'roles' claim is not a list", _ROLE_HINT)
    known = [r for r in (Role.parse(str(n)) for n in names) if r is not None]
    if not known:
        raise _failed("none of the token's roles is viewer, operator or admin", _ROLE_HINT)
    return max(known, key=lambda r: r.rank)
