"""``POST /connections/{name}/test`` against a real PostgreSQL server: reachable, a
user the server does not know (PACS-002), a database that does not exist (PACS-003),
and a port nobody listens on (PACS-001); the password never comes back."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.config import Settings
from pacsync.domain.access import Role

with warnings.catch_warnings():  # starlette would rather use httpx2, which is not installed
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration
PASSWORD = "Not-The-Real-0ne"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, home=tmp_path / "home", database_url=None, secret_key=None
    )
    store = bootstrap.store(settings)
    token = store.api_keys.create("admin", Role.ADMIN)[1]
    with TestClient(create_app(settings, store=store)) as test_client:
        yield test_client, {"Authorization": f"Bearer {token}"}
    store.engine.dispose()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tested(client: tuple[TestClient, dict[str, str]], name: str, url: str) -> dict[str, Any]:
    http, auth = client
    put = http.put(f"/api/v1/connections/{name}", json={"kind": "sql", "url": url}, headers=auth)
    assert put.status_code == 201, put.text
    response = http.post(f"/api/v1/connections/{name}/test", headers=auth)
    assert response.status_code == 200, response.text
    assert PASSWORD not in response.text
    result: dict[str, Any] = response.json()
    return result


def test_connection_tests_report_what_went_wrong(
    client: tuple[TestClient, dict[str, str]], pg_url: str
) -> None:
    good = make_url(pg_url).set(password=PASSWORD)
    ok = _tested(client, "good", good.render_as_string(hide_password=False))
    assert (ok["status"], ok["code"]) == ("ok", None)
    stranger = good.set(username="pacsync_nobody")
    refused = _tested(client, "stranger", stranger.render_as_string(hide_password=False))
    assert (refused["status"], refused["code"]) == ("failed", "PACS-002")
    missing = good.set(database="pacsync_it_missing")
    absent = _tested(client, "missing", missing.render_as_string(hide_password=False))
    assert (absent["status"], absent["code"]) == ("failed", "PACS-003")
    down = good.set(port=_closed_port())
    unreachable = _tested(client, "down", down.render_as_string(hide_password=False))
    assert (unreachable["status"], unreachable["code"]) == ("failed", "PACS-001")
    assert unreachable["hint"]
    assert unreachable["response_ms"] < 6000
