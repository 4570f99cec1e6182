"""The dashboard's session: the caller's API key (or identity-provider JWT) sealed in a
cookie, and the bridge that lets the pages' scripts call the REST API with it.

The cookie (``pacsync_session``) is HttpOnly and ``SameSite=Strict``, ``Secure``
over HTTPS; its value is sealed with the site's secret key (AES-GCM, see
:mod:`pacsync.security.secrets`) under its own context, so any server process of
the site opens it and nobody else reads or forges it.  It holds the token, a
CSRF token and when it expires; the token is verified again on every request
(a revoked key ends its sessions at once).

:class:`SessionBridge` gives ``/api/v1`` requests that carry the cookie and no
``Authorization`` header the session's bearer token — only same-origin ones
(``Sec-Fetch-Site``), and a write only with the session's CSRF token in
``X-CSRF-Token``.  So the pages' writes go through the API's own routes, role
checks and audit trail.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pacsync.errors import PacsyncError
from pacsync.security.secrets import SecretBox

COOKIE = "pacsync_session"
LOGIN_COOKIE = "pacsync_login"  # the login form's CSRF token, before there is a session
CONTEXT = "dashboard-session"
CSRF_HEADER = "x-csrf-token"
LIFETIME_S = 8 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_PREFIX = "/api/v1/"
# the dashboard's own calls that act like the API's (bearer token and CSRF header)
BRIDGED = (API_PREFIX, "/pacs-sync/reconcile")


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str
    expires_at: float

    def seal(self, box: SecretBox) -> str:
        plain = json.dumps({"t": self.token, "c": self.csrf, "x": self.expires_at})
        return box.seal(plain, CONTEXT)

    @classmethod
    def new(cls, token: str, now: float | None = None) -> Session:
        return cls(token, secrets.token_urlsafe(32), (now or time.time()) + LIFETIME_S)

    @classmethod
    def open(cls, box: SecretBox, sealed: str | None, now: float | None = None) -> Session | None:
        """The session a cookie holds; None when absent, forged, garbled or expired."""
        if not sealed:
            return None
        try:
            data = json.loads(box.open(sealed, CONTEXT))
            session = cls(str(data["t"]), str(data["c"]), float(data["x"]))
        except (PacsyncError, ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > (now or time.time()) else None


def same_origin(headers: dict[str, str]) -> bool:
    """A browser says where a request comes from; anything but this origin (or the
    user typing the address) is refused the session."""
    return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(expected.encode(), (given or "").encode())


def set_cookie(response: Response, name: str, value: str, *, secure: bool, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="strict", secure=secure
    )


class SessionBridge:
    """ASGI middleware: a same-origin ``/api/v1`` request with the session cookie and no
    ``Authorization`` header is sent on with the session's token."""

    def __init__(self, app: ASGIApp, box: SecretBox) -> None:
        self.app, self.box = app, box

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(BRIDGED):
            token = self._token(scope)
            if token is not None:
                scope = dict(scope)
                scope["headers"] = [
                    *scope["headers"],
                    (b"authorization", f"Bearer {token}".encode("latin-1")),
                ]
        await self.app(scope, receive, send)

    def _token(self, scope: Scope) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if "authorization" in headers or "cookie" not in headers:
            return None
        cookie = SimpleCookie()
        try:
            cookie.load(headers["cookie"])
        except Exception:  # a malformed Cookie header: no session
            return None
        morsel = cookie.get(COOKIE)
        session = Session.open(self.box, morsel.value if morsel else None)
        if session is None or not same_origin(headers):
            return None
        if scope["method"] not in SAFE_METHODS and not csrf_matches(
            session.csrf, headers.get(CSRF_HEADER)
        ):
            return None
        return session.token


def session_of(connection: HTTPConnection, box: SecretBox) -> Session | None:
    return Session.open(box, connection.cookies.get(COOKIE))
