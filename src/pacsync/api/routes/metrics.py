"""``/metrics``: Prometheus text exposition (viewer role)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pacsync.api.deps import AUTHENTICATED, StateDep, Viewer

router = APIRouter(tags=["metrics"], responses=AUTHENTICATED)


@router.get(
    "/metrics",
    summary="Prometheus metrics: jobs, records, errors, queues, circuits, request latency",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(state: StateDep, _who: Viewer) -> Response:
    text = await run_in_threadpool(generate_latest, state.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
