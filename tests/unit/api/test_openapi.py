"""The OpenAPI document is complete, errors are declared as problem documents, every
write is audited, and the Swagger UI is served."""

from __future__ import annotations

from fastapi.routing import APIRoute

from pacsync.api.app import create_app
from pacsync.api.routes import ROUTERS

from .conftest import Api

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
NOT_AUDITED = {"/pipelines/validate", "/pipelines/{name}/validate"}  # they change nothing


def _routes() -> list[APIRoute]:
    found = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert found
    return found


def _audit_actions(route: APIRoute) -> list[str]:
    found = []
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        action = getattr(dependency.call, "audit_action", None)
        if action:
            found.append(action)
        pending += dependency.dependencies
    return found


def test_every_write_is_audited() -> None:
    for route in _routes():
        if route.methods & WRITES and route.path not in NOT_AUDITED:
            assert _audit_actions(route), f"{route.methods} {route.path} is not audited"


def test_reads_of_job_and_dead_letter_payloads_are_audited() -> None:
    audited = {r.path: _audit_actions(r) for r in _routes() if r.methods == {"GET"}}
    assert audited["/jobs/{job_id}"] == ["job.read"]
    assert audited["/dead-letters/{letter_id}"] == ["dead_letter.read"]
    assert audited["/dead-letters"] == ["dead_letter.list"]


def test_the_document_declares_responses_and_problem_documents(api: Api) -> None:
    response = api.get("/openapi.json", as_=None)
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "pacsync"
    paths = document["paths"]
    assert "/api/v1/jobs/{job_id}" in paths
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            ok = [s for s in responses if s.startswith("2")]
            assert ok, f"{method} {path} declares no success response"
            if path != "/api/v1/metrics":
                assert any(
                    "schema" in c for s in ok for c in responses[s].get("content", {}).values()
                ), f"{method} {path} has no response schema"
            for status, declared in responses.items():
                if status[0] in "45":
                    assert list(declared["content"]) == ["application/problem+json"], (method, path)
            if path != "/api/v1/health":
                assert "401" in responses, f"{method} {path} does not declare 401"
    assert "401" not in paths["/api/v1/health"]["get"]["responses"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code", "hint"}


def test_models_carry_examples(api: Api) -> None:
    schemas = api.get("/openapi.json", as_=None).json()["components"]["schemas"]
    assert schemas["JobCreate"]["properties"]["pipeline"]["examples"] == ["property-assessment"]
    put = api.get("/openapi.json", as_=None).json()["paths"]["/api/v1/pipelines/{name}"]["put"]
    assert set(put["requestBody"]["content"]) == {"application/yaml", "application/json"}


def test_the_swagger_ui_is_served(api: Api) -> None:
    response = api.client.get("/docs")
    assert response.status_code == 200
    assert "/api/v1/openapi.json" in response.text


def test_the_app_builds_its_own_store(api: Api) -> None:
    app = create_app(api.settings)
    assert app.state.api.owns_store is True
    app.state.api.close()
