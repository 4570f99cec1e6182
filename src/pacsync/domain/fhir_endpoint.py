"""A FHIR R4 server (an EHR's API) as a configured connection.

Stored as a connection of kind ``fhir`` whose URL is the server's base URL
(``https://ehr.example.org/api/FHIR/R4``) and whose options say the rest::

    vendor: epic                   # a profile of pacsync.domain.fhir_vendors (default generic)
    client_id: pacsync-backend     # SMART Backend Services client id (iss = sub)
    oauth_url: https://ehr.example.org/oauth2/token   # the token endpoint (aud)
    key_path: /etc/pacsync/fhir-epic.pem   # RSA private key, PEM; or sealed in the connection
    kid: 2024-01                   # key id in the assertion's header, when the server needs it
    scope: system/*.read           # scopes asked for
    group: 1234                    # Group id for Bulk export (vendors that only export groups)
    page_size: 200                 # _count of searches
    timeout_s: 30                  # per HTTP request
    retry: {attempts: 3, backoff_s: 2.0}
    sync: {direction: both, strategy: manual, types: [Patient]}   # of syncs notifications start

The token endpoint is an option named ``oauth_url``: option names with ``token`` in them
are refused by the connection store as secrets in the clear.  Without ``client_id`` the
server is used without authentication (test servers).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pacsync.domain.fhir_vendors import VendorProfile, profile
from pacsync.errors import ConfigError


class Retry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(3, ge=1, le=20)
    backoff_s: float = Field(2.0, ge=0)


class FhirEndpoint(BaseModel):
    """A configured FHIR server (see the module docstring for the options)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    base_url: str
    vendor: str = "generic"
    client_id: str | None = None
    oauth_url: str | None = None
    key_path: str | None = None
    kid: str | None = None
    scope: str = "system/*.read"
    group: str | None = None
    page_size: int = Field(200, ge=1, le=5000)
    timeout_s: float = Field(30.0, gt=0)
    retry: Retry = Retry()
    sync: dict[str, Any] | None = None

    @field_validator("base_url", "oauth_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("vendor")
    @classmethod
    def _vendor(cls, value: str) -> str:
        return profile(value).key

    @property
    def profile(self) -> VendorProfile:
        return profile(self.vendor)

    @property
    def authenticated(self) -> bool:
        return self.client_id is not None

    @classmethod
    def of(cls, name: str, url: str, options: dict[str, Any]) -> FhirEndpoint:
        """The endpoint of a stored connection (kind ``fhir``); ConfigError naming the
        connection and the option when something is wrong."""
        try:
            endpoint = cls(name=name, base_url=url, **options)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "url"
            raise ConfigError(
                f"FHIR connection '{name}': {where}: {first['msg']}",
                hint="Options: vendor, client_id, oauth_url, key_path, kid, scope, group, "
                "page_size, timeout_s, retry.attempts, retry.backoff_s, sync.",
            ) from None
        if endpoint.client_id and not endpoint.oauth_url:
            raise ConfigError(
                f"FHIR connection '{name}': a client id needs the token URL (oauth_url)",
                hint="Give --token-url (the server's smart-configuration token_endpoint).",
            )
        return endpoint
