"""Errors as RFC 9457 problem documents, whatever went wrong."""

from __future__ import annotations

import pytest

from pacsync.api.problems import status_of
from pacsync.errors import (
    AuthenticationFailed,
    CircuitOpen,
    ConfigError,
    InvalidState,
    JobAlreadyRunning,
    NotFound,
    PacsyncError,
    SchemaMismatch,
    StoreUnavailable,
    UnknownPipeline,
)

from .conftest import Api, TestClient, problem


def test_malformed_json_is_a_400_problem(api: Api) -> None:
    response = api.post(
        "/jobs", content=b'{"pipeline": ', headers={"Content-Type": "application/json"}
    )
    body = problem(response, 400, "PACS-105")
    assert "not valid JSON" in body["detail"]


def test_wrong_types_are_a_422_problem_listing_every_field(api: Api) -> None:
    response = api.post("/jobs", json={"pipeline": 7, "mode": "sometimes", "priority": "high"})
    body = problem(response, 422, "PACS-105")
    fields = {e["field"]: e["type"] for e in body["errors"]}
    assert fields == {
        "body.pipeline": "string_type",
        "body.mode": "literal_error",
        "body.priority": "int_parsing",
    }
    assert body["detail"].startswith("body.pipeline: ")
    assert "(and 2 more)" in body["detail"]


def test_a_bad_query_parameter_is_a_422_problem(api: Api) -> None:
    body = problem(api.get("/jobs?limit=0&status=lost"), 422, "PACS-105")
    assert {e["field"] for e in body["errors"]} == {"query.limit", "query.status"}


def test_an_unknown_route_is_a_404_problem(api: Api) -> None:
    body = problem(api.get("/nothing-here"), 404, "PACS-104")
    assert "/api/v1/nothing-here" in body["detail"]


def test_a_wrong_method_is_a_405_problem_naming_every_allowed_method(api: Api) -> None:
    response = api.put("/jobs", json={})
    problem(response, 405, "PACS-105")
    assert response.headers["allow"] == "GET, POST"
    assert api.post("/pipelines/county").headers["allow"] == "GET, PUT"


def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing(api: Api) -> None:
    app = api.client.app

    @app.get("/api/v1/explode")  # type: ignore[attr-defined,untyped-decorator]
    def explode() -> None:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/explode", headers={"X-Request-Id": "req-42"})
    body = problem(response, 500, "PACS-000")
    assert "hunter2" not in response.text
    assert "db.internal" not in response.text
    assert "RuntimeError" not in response.text
    assert "req-42" in body["detail"]
    assert response.headers["x-request-id"] == "req-42"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("x"), 404),
        (InvalidState("x"), 409),
        (JobAlreadyRunning("x"), 409),
        (UnknownPipeline("x"), 404),
        (ConfigError("x"), 422),
        (AuthenticationFailed("x"), 401),
        (StoreUnavailable("x"), 503),
        (CircuitOpen("x"), 503),
        (SchemaMismatch("x"), 422),
        (PacsyncError("x"), 500),
    ],
)
def test_pacsync_errors_map_to_statuses(error: PacsyncError, status: int) -> None:
    assert status_of(error) == status


def test_an_unknown_pipeline_is_a_404_with_its_own_code(api: Api) -> None:
    body = problem(api.get("/pipelines/nowhere"), 404, "PACS-102")
    assert "nowhere" in body["detail"]
