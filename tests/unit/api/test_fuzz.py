"""Requests generated from the OpenAPI document (schemathesis): no route answers with a
server error, and every answer matches the status, media type and schema declared."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.api.rate_limit import RateLimiter
from pacsync.domain.access import Role

from .conftest import settings_for
from .endpoints import endpoints

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# schemathesis reads the document when the module is collected: one app for the module
_FOLDER = Path(tempfile.mkdtemp(prefix="pacsync-fuzz-"))
_STORE = bootstrap.store(settings_for(_FOLDER))
_TOKEN = _STORE.api_keys.create("fuzz", Role.ADMIN)[1]
_APP = create_app(settings_for(_FOLDER), store=_STORE)
_APP.state.api.limiter = RateLimiter(default_per_min=1_000_000)  # answers, not 429s
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", _APP)


@atexit.register  # also when the module is collected and its test deselected
def _cleanup() -> None:
    _APP.state.api.close()
    _STORE.engine.dispose()
    shutil.rmtree(_FOLDER, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_declared_answers(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {_TOKEN}"}, checks=CHECKS)


def test_every_route_of_the_api_is_fuzzed() -> None:
    """Routes added later are in the document, so they are fuzzed too (only the
    document itself and the root aliases of /health, /ready and /metrics are not)."""
    fuzzed = {
        (result.ok().method.upper(), result.ok().path) for result in schema.get_all_operations()
    }
    routed = {
        (e.method, e.template)
        for e in endpoints(_APP)
        if e.template.startswith("/api/v1") and e.template != "/api/v1/openapi.json"
    }
    assert fuzzed == routed
    assert len(fuzzed) >= 43
