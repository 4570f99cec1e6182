"""Who may call: API keys and JWTs, roles, and each caller's rate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.api.key_cache import KeyCache
from pacsync.domain.access import Role

from .conftest import Api, TestClient, problem, settings_for

SECRET = "a-shared-secret-of-at-least-32-bytes!!"


def test_health_needs_no_token(api: Api) -> None:
    response = api.get("/health", as_=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/jobs", "/pipelines", "/dead-letters", "/metrics", "/ready"])
def test_every_other_route_needs_a_token(api: Api, path: str) -> None:
    response = api.get(path, as_=None)
    problem(response, 401, "PACS-002")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer psk_0123456789abcdef_wrong",
        "Bearer psk_nonsense",
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
def test_a_bad_token_is_a_401(api: Api, header: str) -> None:
    response = api.get("/jobs", as_=None, headers={"Authorization": header})
    body = problem(response, 401, "PACS-002")
    assert "psk_" not in body["detail"]


def test_a_key_revoked_elsewhere_stops_working_within_the_cache_time(api: Api) -> None:
    """Revoked by another process (`pacsync keys revoke`): refused once the server's
    memory of the key is older than the key cache's time to live."""
    now = [1000.0]
    state = api.client.app.state.api  # type: ignore[attr-defined]
    state.keys = KeyCache(ttl_s=5.0, clock=lambda: now[0])
    assert api.get("/jobs", as_=Role.VIEWER).status_code == 200
    (viewer,) = [k for k in api.store.api_keys.list() if k.role is Role.VIEWER]
    assert api.store.api_keys.revoke(viewer.id)
    now[0] += 5.0
    problem(api.get("/jobs", as_=Role.VIEWER), 401, "PACS-002")


def test_a_write_through_the_api_forgets_the_remembered_keys(api: Api) -> None:
    assert api.get("/jobs", as_=Role.VIEWER).status_code == 200
    (viewer,) = [k for k in api.store.api_keys.list() if k.role is Role.VIEWER]
    assert api.store.api_keys.revoke(viewer.id)
    api.put("/pipelines/x", content=b"not: [valid")  # any write, refused or not
    problem(api.get("/jobs", as_=Role.VIEWER), 401, "PACS-002")


def test_a_role_too_low_is_a_403(api: Api) -> None:
    body = problem(
        api.post("/sync/start", as_=Role.VIEWER, json={"pipeline": "x"}), 403, "PACS-002"
    )
    assert "needs operator" in body["detail"]
    problem(api.put("/pipelines/x", as_=Role.OPERATOR, content=b"x"), 403, "PACS-002")


def test_a_refused_write_is_audited_as_denied(api: Api) -> None:
    api.delete("/jobs/0b6f0e0c", as_=Role.VIEWER)
    (entry,) = api.audit("job.cancel")
    assert entry["outcome"] == "denied"
    assert entry["actor"].startswith("key:")
    assert entry["target"] == "0b6f0e0c"
    assert entry["source_ip"] == "testclient"


def test_a_key_over_its_rate_gets_429_with_retry_after(api: Api) -> None:
    _, token = api.store.api_keys.create("slow", Role.VIEWER, rate_limit_per_min=3)
    headers = {"Authorization": f"Bearer {token}"}
    statuses = [api.get("/jobs", as_=None, headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = api.get("/jobs", as_=None, headers=headers)
    problem(response, 429, "PACS-106")
    assert 1 <= int(response.headers["retry-after"]) <= 20
    assert api.get("/jobs", as_=Role.VIEWER).status_code == 200  # other callers unaffected


def test_guessing_keys_is_rate_limited_by_address(api: Api) -> None:
    api.client.app.state.api.limiter.default_per_min = 5  # type: ignore[attr-defined]
    bad = {"Authorization": "Bearer psk_0123456789abcdef_guess"}
    statuses = [api.get("/jobs", as_=None, headers=bad).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


@pytest.fixture
def jwt_api(tmp_path: Path) -> Iterator[Api]:
    settings = settings_for(tmp_path, jwt_secret=SECRET, jwt_audience="pacsync")
    store = bootstrap.store(settings)
    with TestClient(create_app(settings, store=store)) as client:
        yield Api(client, store, settings, {})
    store.engine.dispose()


def _token(**claims: object) -> str:
    payload = {"sub": "alice", "aud": "pacsync", "exp": int(time.time()) + 300, **claims}
    return jwt.encode(payload, SECRET, algorithm="HS256")


def test_a_jwt_names_the_caller_and_its_role(jwt_api: Api) -> None:
    operator = {"Authorization": f"Bearer {_token(role='operator')}"}
    assert jwt_api.get("/jobs", as_=None, headers=operator).status_code == 200
    response = jwt_api.delete("/jobs/0b6f0e0c", as_=None, headers=operator)
    problem(response, 404, "PACS-104")
    (entry,) = jwt_api.audit("job.cancel")
    assert (entry["actor"], entry["outcome"]) == ("jwt:alice", "PACS-104")


@pytest.mark.parametrize(
    "token",
    [
        _token(exp=int(time.time()) - 120),
        _token(aud="someone-else"),
        jwt.encode(
            {"sub": "alice", "aud": "pacsync", "exp": 2**31}, "wrong-secret-32-bytes-long-xxxxx"
        ),
    ],
    ids=["expired", "wrong-audience", "forged"],
)
def test_a_bad_jwt_is_a_401(jwt_api: Api, token: str) -> None:
    response = jwt_api.get("/jobs", as_=None, headers={"Authorization": f"Bearer {token}"})
    problem(response, 401, "PACS-002")


def test_a_jwt_viewer_may_not_write(jwt_api: Api) -> None:
    viewer = {"Authorization": f"Bearer {_token()}"}  # no role claim: viewer
    response = jwt_api.post("/sync/start", as_=None, headers=viewer, json={"pipeline": "x"})
    problem(response, 403, "PACS-002")
