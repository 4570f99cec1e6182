"""Bad input to every write route: malformed JSON, JSON of the wrong shape or types,
bodies over the limit (announced or streamed), unknown and out-of-range ids.

Each is refused with a 4xx problem document and changes nothing: no resource
table or pipeline file is written, and the audit trail gains nothing for a
request the framework refused before the route ran (a route that ran and
refused, say an unknown id, records the attempt with its failure code).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from pacsync.api.middleware import MAX_BODY_BYTES
from pacsync.api.rate_limit import RateLimiter
from pacsync.db import tables
from pacsync.domain.access import Role

from .conftest import Api, problem
from .endpoints import Endpoint, endpoints

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
JSON = {"Content-Type": "application/json"}
RESOURCES = (
    tables.jobs,
    tables.api_keys,
    tables.connections,
    tables.conflicts,
    tables.dead_letters,
    tables.webhooks,
    tables.webhook_sources,
    tables.webhook_receipts,
    tables.webhook_deliveries,
)
WRONG_TYPES = {
    "pipeline": 5,
    "kind": [],
    "url": {},
    "name": None,
    "role": "root",
    "events": "job.failed",
    "scheme": 7,
    "strategy": 0,
    "reason": [],
    "secret": 1,
    "password": 2,
}


def _chunks() -> Iterator[bytes]:
    """A body over the limit with no Content-Length (sent chunked)."""
    for _ in range(MAX_BODY_BYTES // 65536 + 2):
        yield b"x" * 65536


BODIES: dict[str, dict[str, Any]] = {
    "malformed JSON": {"content": b'{"pipeline": "county",', "headers": JSON},
    "JSON of the wrong shape": {"content": b"[1, 2, 3]", "headers": JSON},
    "fields of the wrong types": {"json": WRONG_TYPES},
    "a body over the limit": {"content": b"x" * (MAX_BODY_BYTES + 1), "headers": JSON},
    "a streamed body over the limit": {"headers": JSON},  # content: _chunks(), made per call
}
FRAMEWORK = set(BODIES)  # refused before a route with a validated body runs


def _writes(api: Api) -> list[Endpoint]:
    found = [e for e in endpoints(api.client.app) if e.method in WRITES]  # type: ignore[arg-type]
    assert len(found) >= 20
    return found


def _snapshot(api: Api) -> dict[str, Any]:
    with api.store.engine.connect() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in RESOURCES
        }
    files = sorted(p.name for p in api.settings.home.rglob("*.yaml"))
    return {"tables": counts, "files": files}


def _audited_since(api: Api, last_id: int) -> list[dict[str, Any]]:
    return [e for e in api.store.audit.recent(limit=1000) if e["id"] > last_id]


def _last_audit_id(api: Api) -> int:
    latest = api.store.audit.recent(limit=1)
    return int(latest[0]["id"]) if latest else 0


@pytest.fixture
def limitless(api: Api) -> Api:
    api.client.app.state.api.limiter = RateLimiter(default_per_min=1_000_000)  # type: ignore[attr-defined]
    return api


def _refused(response: httpx.Response) -> str | None:
    """Why ``response`` is not a 4xx problem document."""
    if not 400 <= response.status_code < 500:
        return f"{response.status_code} {response.text[:200]}"
    if response.headers.get("content-type") != "application/problem+json":
        return f"{response.headers.get('content-type')} {response.text[:200]}"
    return None


@pytest.mark.parametrize("kind", list(BODIES))
def test_a_bad_body_is_refused_everywhere_and_changes_nothing(limitless: Api, kind: str) -> None:
    api = limitless
    before = _snapshot(api)
    failures = []
    for endpoint in _writes(api):
        since = _last_audit_id(api)
        extra = dict(BODIES[kind])
        if kind == "a streamed body over the limit":
            extra["content"] = _chunks()
        headers = api.headers(Role.ADMIN, extra.pop("headers", None))
        response = api.client.request(endpoint.method, endpoint.path(), headers=headers, **extra)
        if wrong := _refused(response):
            failures.append(f"{endpoint}: {wrong}")
        audited = _audited_since(api, since)
        if endpoint.validated_body and kind in FRAMEWORK and audited:
            failures.append(f"{endpoint}: a refused request was audited: {audited}")
        if any(not _failed(e["outcome"]) for e in audited):
            failures.append(f"{endpoint}: audited as done: {audited}")
    assert failures == []
    assert _snapshot(api) == before


def _failed(outcome: str) -> bool:
    return outcome.startswith(("PACS-", "HTTP ")) or outcome in ("denied", "failed")


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("unknown ids", {}),
        ("ids out of range", {"letter_id": "9" * 20, "conflict_id": "-1", "job_id": "zz"}),
        ("ids too long", {"key_id": "a" * 5000, "webhook_id": "0" * 17, "name": "n" * 300}),
    ],
)
def test_a_bad_id_is_refused_everywhere_and_changes_nothing(
    limitless: Api, kind: str, values: dict[str, str]
) -> None:
    api = limitless
    before = _snapshot(api)
    failures = []
    for endpoint in _writes(api):
        if not endpoint.params:
            continue
        since = _last_audit_id(api)
        path, headers = endpoint.path(values), api.headers(Role.ADMIN)
        response = api.client.request(endpoint.method, path, headers=headers, json={})
        if wrong := _refused(response):
            failures.append(f"{endpoint}: {wrong}")
        audited = _audited_since(api, since)
        if any(not _failed(e["outcome"]) for e in audited):
            failures.append(f"{endpoint}: audited as done: {audited}")
        if "errors" in response.json() and audited:  # refused by validation
            failures.append(f"{endpoint}: a refused request was audited: {audited}")
    assert failures == []
    assert _snapshot(api) == before


def test_a_refused_request_is_not_audited_but_a_route_that_ran_is(limitless: Api) -> None:
    api = limitless
    assert api.post("/jobs", json={"pipeline": 5}).status_code == 422
    assert api.delete("/jobs/zz").status_code == 422
    assert api.audit("job.submit") == []
    assert api.audit("job.cancel") == []
    assert api.delete("/jobs/0b6f0e0c").status_code == 404
    (entry,) = api.audit("job.cancel")
    assert (entry["target"], entry["outcome"]) == ("0b6f0e0c", "PACS-104")


RAW_BODIES = {  # routes that read their body themselves
    ("PUT", "/api/v1/pipelines/{name}"),
    ("POST", "/api/v1/pipelines/validate"),
    ("POST", "/api/v1/webhooks/receive/{source}"),
}


def test_a_nul_character_is_a_400_and_changes_nothing(limitless: Api) -> None:
    """In the query or path of any route, or in a JSON body a route reads: PostgreSQL
    cannot store a NUL and SQLite would, so both refuse it alike (a route that reads
    its body itself has begun, and records the refusal)."""
    api = limitless
    before, since = _snapshot(api), _last_audit_id(api)
    failures = []
    body = b'{"name": "a\\u0000b", "pipeline": "x\\u0000", "url": "https://h/\\u0000"}'
    for endpoint in endpoints(api.client.app):  # type: ignore[arg-type]
        headers = api.headers(Role.ADMIN)
        sends = [{"params": {"pipeline": "a\x00b"}}]
        if endpoint.validated_body or (endpoint.method, endpoint.template) in RAW_BODIES:
            sends.append({"content": body, "headers": {**headers, **JSON}})
        for extra in sends:
            response = api.client.request(
                endpoint.method, endpoint.path(), **{"headers": headers, **extra}
            )
            if response.status_code != 400 or _refused(response):
                failures.append(f"{endpoint}: {response.status_code} {response.text[:150]}")
    assert failures == [], "\n".join(failures)
    assert api.get("/jobs/%00").status_code == 400
    assert _snapshot(api) == before
    audited = _audited_since(api, since)
    assert [(e["action"], e["outcome"]) for e in audited] == [("pipeline.put", "HTTP 400")]


def test_a_nul_escape_split_between_chunks_is_refused_and_an_escaped_backslash_is_not(
    limitless: Api,
) -> None:
    api = limitless
    split = iter([b'{"name": "a\\', b'u0000", "role": "viewer"}'])
    response = api.post("/keys", content=split, headers=JSON)
    body = problem(response, 400, "PACS-105")
    assert "NUL" in body["detail"]
    assert api.store.api_keys.count_active() == 3
    literal = api.post("/keys", content=b'{"name": "a\\\\u0000b", "role": "viewer"}', headers=JSON)
    assert literal.status_code == 201, literal.text
    assert literal.json()["name"] == "a\\u0000b"
