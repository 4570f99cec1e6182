"""Webhooks: subscriptions and their delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from pacsync.api.dashboard import views
from pacsync.api.dashboard.auth import (
    CallerDep,
    require,
)
from pacsync.api.dashboard.rendering import render, state_of
from pacsync.domain.access import Role

router = APIRouter(include_in_schema=False)


# -- webhooks ------------------------------------------------------------------------------


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, caller: CallerDep) -> HTMLResponse:
    from pacsync.jobs.webhooks import EVENTS

    state = state_of(request)
    if not caller.can_admin:
        return render(request, "webhooks.html", caller, hooks=[], events=EVENTS, admin=False)
    hooks = state.store.webhooks.list()
    recent = {h.id: state.store.webhooks.deliveries(h.id, 1) for h in hooks}
    return render(
        request,
        "webhooks.html",
        caller,
        hooks=hooks,
        recent=recent,
        events=EVENTS,
        admin=True,
        pipelines=[p.name for p in views.pipelines(state)],
    )


@router.get("/webhooks/{webhook_id}", response_class=HTMLResponse)
def webhook_page(
    request: Request, caller: CallerDep, webhook_id: Annotated[str, PathParam(max_length=64)]
) -> HTMLResponse:
    require(caller, Role.ADMIN)
    state = state_of(request)
    hook = state.store.webhooks.get(webhook_id)
    if hook is None:
        return render(request, "missing.html", caller, what=f"webhook {webhook_id}", code=404)
    deliveries = state.store.webhooks.deliveries(webhook_id, 100)
    return render(request, "webhook.html", caller, hook=hook, deliveries=deliveries)
