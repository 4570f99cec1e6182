"""The operator dashboard: server-rendered pages at ``/`` of the API's own app.

``install(app, settings)`` mounts the pages, their static files (our own CSS and
script, no third-party code) and the session bridge that lets the pages' scripts
call ``/api/v1`` with the logged-in session (see :mod:`.session`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from pacsync.api.dashboard.auth import LoginRequired, PageForbidden
from pacsync.api.dashboard.pages import router
from pacsync.api.dashboard.rendering import HEADERS, render
from pacsync.api.dashboard.session import SessionBridge
from pacsync.config import Settings
from pacsync.security.secrets import SecretBox

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, settings: Settings) -> None:
    box = SecretBox.load(settings)
    app.state.dashboard_box = box
    app.add_middleware(SessionBridge, box=box)
    app.mount("/dashboard-static", StaticFiles(directory=STATIC), name="dashboard-static")
    app.include_router(router)

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(
            exc.next_path, status_code=303, headers={"Cache-Control": "no-store"}
        )

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageForbidden)
        return _forbidden(request, exc)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageForbidden, forbidden)


def _forbidden(request: Request, exc: PageForbidden) -> HTMLResponse:
    from pacsync.api.dashboard.auth import Caller

    caller: Caller | None = getattr(request.state, "dashboard_caller", None)
    return render(request, "forbidden.html", caller, code=403, needed=exc.needed.value)


__all__ = ["HEADERS", "install"]
