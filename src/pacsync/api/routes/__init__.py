"""One router per resource; the app mounts each under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from pacsync.api.routes import (
    archives,
    audit,
    conflicts,
    connections,
    dead_letters,
    fhir_notifications,
    frames,
    health,
    jobs,
    keys,
    messages,
    metrics,
    pipelines,
    qido,
    rendered,
    statistics,
    stow,
    studies,
    sync,
    viewer_links,
    wado,
    webhooks,
    worklist,
)

ROUTERS: list[APIRouter] = [
    health.router,
    pipelines.router,
    sync.router,
    jobs.router,
    dead_letters.router,
    statistics.router,
    metrics.router,
    messages.router,
    connections.router,
    conflicts.router,
    fhir_notifications.router,
    webhooks.router,
    keys.router,
    audit.router,
    archives.router,
    qido.router,
    wado.router,
    stow.router,
    frames.router,
    rendered.router,
    studies.router,
    viewer_links.router,
    worklist.router,
]
