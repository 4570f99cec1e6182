"""Every route of the app × every kind of caller.

The routes are read from ``app.routes``, so a route added later is covered without
touching this file; the role each needs is read from its dependencies (``require``
and ``Audit`` name it in ``required_role``) and checked against a table for the
routes that matter most.  A bad credential is a 401 problem document with
``WWW-Authenticate: Bearer`` and writes nothing; a role below the route's is a 403
(audited as denied where the route is audited); no caller ever gets a 5xx.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.api.rate_limit import RateLimiter
from pacsync.db import tables
from pacsync.domain.access import Role
from pacsync.security.signatures import sign_headers

from .conftest import Api, TestClient, pipeline_text, settings_for
from .endpoints import PUBLIC, SIGNED, Endpoint, Needs, endpoints

JWT_SECRET = "matrix-jwt-secret-of-at-least-32-bytes"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}

# The routes that matter most, spelled out: a change to any of them must be deliberate.
EXPECTED: dict[tuple[str, str], Needs] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/api/v1/health"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("POST", "/api/v1/webhooks/receive/{source}"): SIGNED,
    ("GET", "/ready"): Role.VIEWER,
    ("GET", "/metrics"): Role.VIEWER,
    ("GET", "/api/v1/jobs"): Role.VIEWER,
    ("GET", "/api/v1/jobs/{job_id}"): Role.VIEWER,
    ("GET", "/api/v1/dead-letters/{letter_id}"): Role.VIEWER,
    ("GET", "/api/v1/connections"): Role.VIEWER,
    ("GET", "/api/v1/conflicts/{conflict_id}"): Role.VIEWER,
    ("POST", "/api/v1/pipelines/validate"): Role.VIEWER,
    ("POST", "/api/v1/sync/start"): Role.OPERATOR,
    ("POST", "/api/v1/jobs"): Role.OPERATOR,
    ("DELETE", "/api/v1/jobs/{job_id}"): Role.OPERATOR,
    ("POST", "/api/v1/jobs/{job_id}/retry"): Role.OPERATOR,
    ("POST", "/api/v1/dead-letters/{letter_id}/retry"): Role.OPERATOR,
    ("POST", "/api/v1/dead-letters/{letter_id}/discard"): Role.OPERATOR,
    ("POST", "/api/v1/conflicts/{conflict_id}/resolve"): Role.OPERATOR,
    ("GET", "/api/v1/viewer-links"): Role.OPERATOR,
    ("DELETE", "/api/v1/viewer-links/{link_id}"): Role.OPERATOR,
    ("DELETE", "/api/v1/studies/{uid}/viewer-links"): Role.OPERATOR,
    ("PUT", "/api/v1/pipelines/{name}"): Role.ADMIN,
    ("PUT", "/api/v1/connections/{name}"): Role.ADMIN,
    ("DELETE", "/api/v1/connections/{name}"): Role.ADMIN,
    ("POST", "/api/v1/connections/{name}/test"): Role.ADMIN,
    ("GET", "/api/v1/webhooks"): Role.ADMIN,
    ("POST", "/api/v1/webhooks"): Role.ADMIN,
    ("GET", "/api/v1/webhooks/{webhook_id}"): Role.ADMIN,
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): Role.ADMIN,
    ("POST", "/api/v1/webhooks/{webhook_id}/retry"): Role.ADMIN,
    ("GET", "/api/v1/webhooks/sources"): Role.ADMIN,
    ("PUT", "/api/v1/webhooks/sources/{source}"): Role.ADMIN,
    ("DELETE", "/api/v1/webhooks/sources/{source}"): Role.ADMIN,
    ("GET", "/api/v1/keys"): Role.ADMIN,
    ("POST", "/api/v1/keys"): Role.ADMIN,
    ("DELETE", "/api/v1/keys/{key_id}"): Role.ADMIN,
    ("GET", "/api/v1/audit"): Role.ADMIN,
}
# writes a viewer may send: they check a file and change nothing
VIEWER_WRITES = {
    ("POST", "/api/v1/pipelines/validate"),
    ("POST", "/api/v1/pipelines/{name}/validate"),
}
# the dashboard's session forms: no bearer token (the form's CSRF token and cookie)
SESSION_FORMS = {("POST", "/login"), ("POST", "/logout")}

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/sync/start"): {"json": {"pipeline": "county"}},
    ("POST", "/api/v1/jobs"): {"json": {"pipeline": "county", "idempotency_key": "matrix"}},
    ("POST", "/api/v1/conflicts/{conflict_id}/resolve"): {
        "json": {"strategy": "USE_REMOTE", "reason": "checked with the clinic"}
    },
    ("PUT", "/api/v1/connections/{name}"): {
        "json": {"kind": "sql", "url": "postgresql+psycopg://sync@127.0.0.1:1/warehouse"}
    },
    ("POST", "/api/v1/webhooks"): {
        "json": {"url": "https://hooks.example.org/pacsync", "events": ["job.failed"]}
    },
    ("PUT", "/api/v1/webhooks/sources/{source}"): {
        "json": {"scheme": "github", "pipeline": "county"}
    },
    ("POST", "/api/v1/keys"): {"json": {"name": "ci", "role": "viewer"}},
    ("POST", "/api/v1/webhooks/receive/{source}"): {"content": b'{"event":"patient.updated"}'},
}


@dataclass
class Matrix(Api):
    endpoints: list[Endpoint]
    credentials: dict[str, str | None]
    bodies: dict[tuple[str, str], dict[str, Any]]

    def call(self, endpoint: Endpoint, credential: str) -> httpx.Response:
        header = self.credentials[credential]
        extra = dict(self.bodies.get((endpoint.method, endpoint.template), {}))
        headers = dict(extra.pop("headers", {}))
        if header is not None:
            headers["Authorization"] = header
        path = endpoint.path({"source": "ehr"} if endpoint.needs == SIGNED else None)
        return self.client.request(endpoint.method, path, headers=headers, **extra)

    def written(self) -> dict[str, int]:
        """Rows of every table a request could write."""
        counted = (
            tables.audit_log,
            tables.jobs,
            tables.api_keys,
            tables.connections,
            tables.webhooks,
            tables.webhook_sources,
            tables.webhook_receipts,
            tables.conflicts,
            tables.dead_letters,
        )
        with self.store.engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in counted
            }


def _jwt(role: str, *, secret: str = JWT_SECRET, expires_in: int = 300, alg: str = "HS256") -> str:
    claims = {"sub": f"matrix-{role}", "role": role, "exp": int(time.time()) + expires_in}
    return jwt.encode(claims, None if alg == "none" else secret, algorithm=alg)


@pytest.fixture
def matrix(tmp_path: Path) -> Iterator[Matrix]:
    settings = settings_for(tmp_path, jwt_secret=JWT_SECRET)
    store = bootstrap.store(settings)
    tokens = {role: store.api_keys.create(f"matrix {role.value}", role)[1] for role in Role}
    revoked_view, revoked = store.api_keys.create("revoked admin", Role.ADMIN)
    assert store.api_keys.revoke(revoked_view.id)
    admin_id = tokens[Role.ADMIN].split("_")[1]
    folder = settings.home / "pipelines"
    folder.mkdir(parents=True)
    text = pipeline_text("county", settings.home)
    (folder / "county.yaml").write_text(text, encoding="utf-8")
    yaml = {"content": text, "headers": {"Content-Type": "application/yaml"}}
    bodies = {
        **BODIES,
        ("PUT", "/api/v1/pipelines/{name}"): yaml,
        ("POST", "/api/v1/pipelines/validate"): yaml,
    }
    store.webhook_sources.put_source(
        "ehr", "github", "ehr-shared-secret-0123456789", pipeline="county"
    )
    credentials: dict[str, str | None] = {
        "no token": None,
        "malformed token": "Bearer %%not-a-token%%",
        "basic auth": "Basic dXNlcjpwYXNz",
        "forged key": f"Bearer psk_{admin_id}_{'A' * 43}",
        "revoked key": f"Bearer {revoked}",
        "expired jwt": f"Bearer {_jwt('admin', expires_in=-3600)}",
        "jwt of another secret": f"Bearer {_jwt('admin', secret='x' * 40)}",
        "jwt alg none": f"Bearer {_jwt('admin', alg='none')}",
        **{f"{role.value} key": f"Bearer {tokens[role]}" for role in Role},
        **{f"{role.value} jwt": f"Bearer {_jwt(role.value)}" for role in Role},
    }
    app = create_app(settings, store=store)
    app.state.api.limiter = RateLimiter(default_per_min=1_000_000)  # thousands of calls
    with TestClient(app) as client:
        yield Matrix(client, store, settings, tokens, endpoints(app), credentials, bodies)
    store.engine.dispose()


BAD = [
    "no token",
    "malformed token",
    "basic auth",
    "forged key",
    "revoked key",
    "expired jwt",
    "jwt of another secret",
    "jwt alg none",
]
GOOD = {f"{role.value} {kind}": role for role in Role for kind in ("key", "jwt")}


def test_every_route_is_enumerated_with_what_it_needs(matrix: Matrix) -> None:
    found = {(e.method, e.template): e.needs for e in matrix.endpoints}
    assert len(found) >= 45
    for key, needs in EXPECTED.items():
        assert key in found, f"{key} is not routed"
        assert found[key] == needs, f"{key} needs {found[key]}, expected {needs}"
    for (method, template), needs in found.items():
        if template.startswith("/api/v1") and template not in (
            "/api/v1/health",
            "/api/v1/openapi.json",
        ):
            assert needs != PUBLIC, f"{method} {template} needs no credentials"
        if method in WRITES and (method, template) not in VIEWER_WRITES | SESSION_FORMS:
            assert needs in (Role.OPERATOR, Role.ADMIN, SIGNED), f"{method} {template}: {needs}"


def _problem(response: httpx.Response, status: int) -> str | None:
    """Why ``response`` is not a problem document of ``status`` with code PACS-002."""
    if response.status_code != status:
        return f"{response.status_code} {response.text[:200]}"
    if response.headers.get("content-type") != "application/problem+json":
        return f"content-type {response.headers.get('content-type')}"
    body = response.json()
    if (body.get("status"), body.get("code")) != (status, "PACS-002"):
        return f"body {body}"
    return None


@pytest.mark.parametrize("credential", BAD)
def test_a_bad_credential_is_a_401_everywhere_and_writes_nothing(
    matrix: Matrix, credential: str
) -> None:
    before = matrix.written()
    failures = []
    for endpoint in matrix.endpoints:
        response = matrix.call(endpoint, credential)
        if endpoint.needs == PUBLIC:
            wrong = None if response.is_success else f"{response.status_code}"
        else:
            wrong = _problem(response, 401)
            bearer = response.headers.get("www-authenticate") == "Bearer"
            if wrong is None and endpoint.needs != SIGNED and not bearer:
                wrong = "no WWW-Authenticate: Bearer"
        if wrong:
            failures.append(f"{endpoint}: {wrong}")
    assert failures == []
    assert matrix.written() == before


@pytest.mark.parametrize("credential", sorted(GOOD))
def test_each_role_gets_what_it_may_and_a_403_for_the_rest(matrix: Matrix, credential: str) -> None:
    role = GOOD[credential]
    failures = []
    for endpoint in matrix.endpoints:
        response = matrix.call(endpoint, credential)
        status = response.status_code
        if status >= 500:
            failures.append(f"{endpoint}: {status} {response.text[:200]}")
        elif endpoint.needs == PUBLIC:
            if not response.is_success:
                failures.append(f"{endpoint}: {status} for a public route")
        elif endpoint.needs == SIGNED:  # a bearer token is no signature
            if wrong := _problem(response, 401):
                failures.append(f"{endpoint}: {wrong}")
        elif isinstance(endpoint.needs, Role) and not role.allows(endpoint.needs):
            if wrong := _problem(response, 403):
                failures.append(f"{endpoint}: {wrong}")
            elif endpoint.audit_action and not _denied(matrix, endpoint.audit_action):
                failures.append(f"{endpoint}: the refusal is not audited")
        elif status in (401, 403):
            failures.append(f"{endpoint}: {status} for {role.value}")
        elif status == 422 and any(
            e["field"].startswith("path") for e in response.json().get("errors", [])
        ):
            failures.append(f"{endpoint}: a sample path parameter is refused: {response.text}")
    assert failures == []


def _denied(matrix: Matrix, action: str) -> bool:
    latest = matrix.store.audit.recent(action=action)
    return bool(latest) and latest[0]["outcome"] == "denied"


def test_a_valid_signature_needs_no_bearer_token(matrix: Matrix) -> None:
    body = BODIES[("POST", "/api/v1/webhooks/receive/{source}")]["content"]
    headers = sign_headers("github", "ehr-shared-secret-0123456789", "m-1", time.time(), body)
    response = matrix.client.post("/api/v1/webhooks/receive/ehr", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
