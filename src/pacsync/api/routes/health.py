"""``/health`` (liveness: the process answers) and ``/ready`` (what it depends on)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from pacsync.api.deps import AUTHENTICATED, StateDep, Viewer
from pacsync.api.schemas import Check, Health, Model, Readiness
from pacsync.bootstrap.health import NodeCheck, dicom_nodes, readiness

router = APIRouter(tags=["health"])
CRITICAL = ("store", "job_layer")  # down: nothing works (UNHEALTHY); else DEGRADED


class DicomNodeHealth(Model):
    name: str = Field(examples=["sectra"])
    status: Literal["HEALTHY", "DEGRADED", "UNHEALTHY"]
    echo_ms: float | None = Field(None, examples=[4.2], description="association and C-ECHO")
    probe_ms: float | None = Field(None, examples=[9.8], description="a C-FIND matching nothing")
    reasons: list[str] = Field(examples=[["query probe took 2500 ms (slower than 2000 ms)"]])
    recent_operations: int = Field(description="the node's last operations from this process")
    recent_errors: int
    age_s: float = Field(description="seconds since the node was probed (results kept 30 s)")


class NodeReadiness(Readiness):
    """A node that is not HEALTHY makes the whole DEGRADED, never UNHEALTHY: pacsync
    itself still serves."""

    dicom_nodes: list[DicomNodeHealth]


def _node(check: NodeCheck) -> DicomNodeHealth:
    h = check.health
    return DicomNodeHealth(
        name=h.node,
        status=h.status.value,
        echo_ms=h.echo.ms,
        probe_ms=h.probe.ms if h.probe else None,
        reasons=list(h.reasons),
        recent_operations=h.recent.operations,
        recent_errors=h.recent.errors,
        age_s=check.age_s,
    )


@router.get("/health", summary="Liveness: the server answers (no authentication)")
def health() -> Health:
    return Health()


@router.get(
    "/ready",
    summary="Readiness: the store, the job layer, every pipeline connection and DICOM node",
    response_model=NodeReadiness,
    responses={
        **AUTHENTICATED,
        503: {"model": NodeReadiness, "description": "UNHEALTHY: the store or job layer is down"},
    },
)
def ready(state: StateDep, _who: Viewer) -> JSONResponse:
    with ThreadPoolExecutor(1, thread_name_prefix="pacsync-ready-dicom") as pool:
        probed = pool.submit(dicom_nodes, state.store)  # at the same time as the checks
        results = readiness(state.settings, state.store.engine, state.job_client)
        nodes = [_node(n) for n in probed.result()]
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
    elif any(not r.up for r in results) or any(n.status != "HEALTHY" for n in nodes):
        status = "DEGRADED"
    else:
        status = "HEALTHY"
    body = NodeReadiness(status=status, checks=checks, dicom_nodes=nodes)
    return JSONResponse(
        body.model_dump(mode="json"), status_code=503 if status == "UNHEALTHY" else 200
    )
