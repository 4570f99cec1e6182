"""Login and logout: the key or JWT checked like a bearer token and sealed in the
session cookie; CSRF tokens on both forms."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pacsync.api.dashboard.auth import (
    box_of,
    safe_next,
    verify,
)
from pacsync.api.dashboard.rendering import render, state_of
from pacsync.api.dashboard.session import (
    COOKIE,
    LIFETIME_S,
    LOGIN_COOKIE,
    Session,
    csrf_matches,
    same_origin,
    session_of,
    set_cookie,
)
from pacsync.api.deps import AuditEntry, record_audit
from pacsync.api.problems import ProblemException
from pacsync.errors import InvalidRequest

router = APIRouter(include_in_schema=False)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# -- login and logout ----------------------------------------------------------------------


def _login_page(request: Request, next_path: str, error: str | None = None) -> HTMLResponse:
    token = request.cookies.get(LOGIN_COOKIE) or _new_token()
    state = state_of(request)
    response = render(
        request,
        "login.html",
        None,
        csrf=token,
        next=safe_next(next_path),
        error=error,
        jwt=state.verifier is not None,
    )
    secure = request.url.scheme == "https"
    set_cookie(response, LOGIN_COOKIE, token, secure=secure, max_age=3600)
    return response


def _new_token() -> str:
    return secrets.token_urlsafe(24)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, next)


async def form_of(request: Request) -> dict[str, str]:
    """The fields of a posted form; a body of another type is a 400 problem (no body:
    no fields)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in FORM_TYPES:
        if media or await request.body():
            raise ProblemException(
                400,
                InvalidRequest(
                    f"this form takes {FORM_TYPES[0]}, not '{media or 'no type'}'",
                    hint="Send the page's form as the browser does.",
                ),
            )
        return {}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """The login form: the key (or JWT) is verified like a bearer token, then sealed in
    the session cookie; the form's CSRF token must match its cookie."""
    fields = await form_of(request)
    token, next_path = fields.get("token", "").strip()[:8000], fields.get("next", "/")
    expected = request.cookies.get(LOGIN_COOKIE)
    given = fields.get("csrf")
    if not expected or not csrf_matches(expected, given) or not same_origin(dict(request.headers)):
        return _login_page(request, next_path, "The form expired; please sign in again.")
    who = await verify(request, state_of(request), token) if token else None
    if who is None:
        return _login_page(request, next_path, "That key or token was not accepted.")
    session = Session.new(token)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    secure = request.url.scheme == "https"
    set_cookie(response, COOKIE, session.seal(box_of(request)), secure=secure, max_age=LIFETIME_S)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    record_audit(state_of(request), request, AuditEntry("dashboard.login", None, who.subject), "ok")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Ends the session (the form's CSRF token must be the session's)."""
    fields = await form_of(request)
    response = RedirectResponse("/login", status_code=303)
    session = session_of(request, box_of(request))
    if session is not None and csrf_matches(session.csrf, fields.get("csrf")):
        response.delete_cookie(COOKIE, path="/", samesite="strict", httponly=True)
    return response
