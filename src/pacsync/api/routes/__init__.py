"""One router per resource; the app mounts each under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from pacsync.api.routes import dead_letters, health, jobs, metrics, pipelines, statistics, sync

ROUTERS: list[APIRouter] = [
    health.router,
    pipelines.router,
    sync.router,
    jobs.router,
    dead_letters.router,
    statistics.router,
    metrics.router,
]
