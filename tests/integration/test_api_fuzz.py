"""Requests generated from the OpenAPI document (schemathesis) against the API over a
PostgreSQL store, which refuses what SQLite lets through (NUL bytes in text, integers
past 64 bits): no route answers with a server error, every answer is one the
document declares, and bad input written past validation is refused, not a 500."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, inspect, select, table

from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.api.rate_limit import RateLimiter
from pacsync.config import Settings
from pacsync.domain.access import Role

with warnings.catch_warnings():  # starlette would rather use httpx2, which is not installed
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Fuzzed:
    app: FastAPI
    headers: dict[str, str]
    store: bootstrap.Store

    def written(self) -> dict[str, int]:
        """Rows in each of the store's tables."""
        found = inspect(self.store.engine).get_table_names()
        with self.store.engine.connect() as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table(name))).scalar_one()
                for name in found
            }


@pytest.fixture(scope="module")
def fuzzed(postgres: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """The app over a fresh PostgreSQL store (one for the module), and an admin's key."""
    url = postgres.create()
    home = tmp_path_factory.mktemp("fuzz")
    config = Settings(  # type: ignore[call-arg]
        _env_file=None, home=home, database_url=url, pipelines_dir=None, secret_key=None
    )
    store = bootstrap.store(config)
    token = store.api_keys.create("fuzz", Role.ADMIN)[1]
    app = create_app(config, store=store)
    app.state.api.limiter = RateLimiter(default_per_min=1_000_000)
    try:
        yield Fuzzed(app, {"Authorization": f"Bearer {token}"}, store)
    finally:
        app.state.api.close()
        store.engine.dispose()
        postgres.drop(url)


def _document_schema() -> Any:
    """The schema as the app documents it (read once, at collection, from an app over a
    throwaway store: the document does not depend on the store)."""
    with tempfile.TemporaryDirectory(prefix="pacsync-fuzz-") as folder:
        config = Settings(  # type: ignore[call-arg]
            _env_file=None, home=Path(folder), database_url=None, secret_key=None
        )
        app = create_app(config)
        try:
            return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        finally:
            app.state.api.close()


schema = _document_schema()


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_on_postgresql_get_declared_answers(case: Any, fuzzed: Fuzzed) -> None:
    case.call_and_validate(app=fuzzed.app, headers=fuzzed.headers, checks=CHECKS)


NUL = "a\x00b"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/keys", {"name": NUL, "role": "viewer"}),
        (
            "POST",
            "/api/v1/webhooks",
            {"url": "https://h.example/x", "events": ["*"], "description": NUL},
        ),
        (
            "PUT",
            "/api/v1/connections/w",
            {"kind": "sql", "url": "postgresql://u@h/d", "options": {"a": NUL}},
        ),
        (
            "PUT",
            "/api/v1/connections/w",
            {"kind": "sql", "url": "postgresql://u@h/d", "password": NUL},
        ),
        ("GET", "/api/v1/jobs?pipeline=a%00b", None),
        ("GET", "/api/v1/audit?actor=a%00b", None),
        ("GET", "/api/v1/dead-letters?pipeline=%00", None),
        ("GET", "/api/v1/conflicts?pipeline=%00", None),
        ("GET", "/api/v1/statistics?pipeline=%00", None),
    ],
)
def test_a_nul_character_is_refused_on_postgresql_and_changes_nothing(
    fuzzed: Fuzzed, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """PostgreSQL cannot store a NUL: the store's refusal was answered 502 as if a source
    database had failed, after the audit entry of a key it did not create."""
    before = fuzzed.written()
    with TestClient(fuzzed.app, headers=fuzzed.headers) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "PACS-105"
    assert "NUL" in response.json()["detail"]
    assert fuzzed.written() == before
