"""What every dashboard page uses: the templates, the security headers, rendering and
the audit record of a page that shows patient data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from pacsync.api.dashboard.auth import (
    Caller,
)
from pacsync.api.deps import AuditEntry, record_audit
from pacsync.api.state import ApiState

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def render(
    request: Request, name: str, caller: Caller | None, code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"caller": caller, "path": request.url.path, **context},
        status_code=code,
        headers=HEADERS,
    )


def audit_read(request: Request, caller: Caller, action: str, target: str | None = None) -> None:
    """A page that shows patient data is recorded like the API route that reads it."""
    record_audit(state_of(request), request, AuditEntry(action, target, caller.who.subject), "ok")
