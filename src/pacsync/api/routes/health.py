"""``/health`` (liveness: the process answers) and ``/ready`` (what it depends on)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pacsync.api.deps import AUTHENTICATED, StateDep, Viewer
from pacsync.api.schemas import Check, Health, Readiness
from pacsync.bootstrap.health import readiness

router = APIRouter(tags=["health"])
CRITICAL = ("store", "job_layer")  # down: nothing works (UNHEALTHY); else DEGRADED


@router.get("/health", summary="Liveness: the server answers (no authentication)")
def health() -> Health:
    return Health()


@router.get(
    "/ready",
    summary="Readiness: the store, the job layer and every pipeline connection",
    response_model=Readiness,
    responses={
        **AUTHENTICATED,
        503: {"model": Readiness, "description": "UNHEALTHY: the store or job layer is down"},
    },
)
def ready(state: StateDep, _who: Viewer) -> JSONResponse:
    results = readiness(state.settings, state.store.engine, state.job_client)
    checks = [
        Check(
            name=r.name,
            kind=r.kind,
            status="up" if r.up else "down",
            response_ms=r.response_ms,
            detail=r.detail,
        )
        for r in results
    ]
    if any(not r.up and r.kind in CRITICAL for r in results):
        status = "UNHEALTHY"
    elif any(not r.up for r in results):
        status = "DEGRADED"
    else:
        status = "HEALTHY"
    body = Readiness(status=status, checks=checks)
    return JSONResponse(
        body.model_dump(mode="json"), status_code=503 if status == "UNHEALTHY" else 200
    )
