"""The FastAPI application: ``create_app(settings)``; ``pacsync serve`` runs ``factory``.

The store is opened once (migrated if needed) and shared by every request; the
job-engine client is made on first use; both are closed when the app stops.
The OpenAPI document is at ``/api/v1/openapi.json``, the Swagger UI at ``/docs``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry

from pacsync import bootstrap
from pacsync.api import cors, dashboard, problems
from pacsync.api.compression import JsonGzip
from pacsync.api.metrics import StoreCollector, http_latency
from pacsync.api.middleware import MAX_BODY_BYTES, BodyLimit, NoNul, RequestId, RequestLatency
from pacsync.api.rate_limit import RateLimiter
from pacsync.api.routes import ROUTERS, health, stow, studies
from pacsync.api.routes import metrics as metrics_routes
from pacsync.api.state import ApiState
from pacsync.config import Settings
from pacsync.security import redaction

PREFIX = "/api/v1"
DESCRIPTION = """\
pacsync's REST API: pipelines, sync jobs, dead letters, statistics and metrics.

Every route except `GET /api/v1/health` needs `Authorization: Bearer <API key or JWT>`;
viewers read, operators run, cancel and retry, admins manage configuration.  Errors
are RFC 9457 `application/problem+json` documents with the PACS error `code`.
"""
COMMON = problems.responses(401, 403, 429, 500)


def allowed_methods(path: str) -> list[str]:
    """The methods the API's routes accept at ``path``."""
    relative = path.removeprefix(PREFIX)
    return sorted(
        {
            method
            for router in ROUTERS
            for route in router.routes
            if isinstance(route, APIRoute) and route.path_regex.match(relative)
            for method in route.methods or ()
        }
    )


def _version() -> str:
    try:
        return version("pacsync")
    except PackageNotFoundError:
        return "0"


def create_app(
    settings: Settings | None = None,
    *,
    store: bootstrap.Store | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The API over ``store`` (default: the one ``settings`` name, opened here)."""
    settings = settings or Settings()
    registry = CollectorRegistry(auto_describe=False)
    state = ApiState(
        settings=settings,
        store=store or bootstrap.store(settings),
        verifier=bootstrap.token_verifier(settings),
        limiter=RateLimiter(),
        registry=registry,
        owns_store=store is None,
    )
    registry.register(StoreCollector(state))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="pacsync",
        version=_version(),
        description=DESCRIPTION,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.api = state
    problems.install(app, allowed_methods)
    app.add_middleware(RequestLatency, histogram=http_latency(registry))
    app.add_middleware(NoNul)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, exempt=stow.is_upload)
    app.add_middleware(JsonGzip)  # JSON answers gzipped when the client accepts it
    app.add_middleware(RequestId)  # the outermost: every response has the id
    cors.install(app, settings)  # DICOMweb across origins, around even the error handling
    for router in ROUTERS:
        app.include_router(router, prefix=PREFIX)
    # Where load balancers and Prometheus look by default: /health, /ready, /metrics.
    for router in (health.router, metrics_routes.router):
        app.include_router(router, include_in_schema=False)
    app.include_router(studies.pages, include_in_schema=False)  # the viewer page, /viewer/{uid}
    dashboard.install(app, settings)  # the operator dashboard at /, its pages and session

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = problems.as_problem_documents(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def factory() -> FastAPI:
    """The app from the environment's settings (``uvicorn --factory``); secrets are
    kept out of the server's logs."""
    redaction.install()
    return create_app(Settings())
