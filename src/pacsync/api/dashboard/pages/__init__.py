"""The dashboard's pages: login and logout, overview, property sync (``/pacs-sync``), jobs,
conflicts, webhooks, imaging, messaging and the audit log.

Pages are rendered here from the store (the API routes' own reads); everything a
page changes it changes by calling the REST API from its script with the session
(see :mod:`pacsync.api.dashboard.session`), so writes get the API's role checks and audit records.
Live parts poll the API or follow ``/pacs-sync/events`` (server-sent events).
"""

from __future__ import annotations

from fastapi import APIRouter

from pacsync.api.dashboard.pages import (
    audit,
    conflicts,
    imaging,
    jobs,
    login,
    messages,
    sync,
    webhooks,
)

router = APIRouter(include_in_schema=False)
for part in (login, sync, jobs, conflicts, webhooks, imaging, messages, audit):
    router.include_router(part.router)
