"""Cross-origin access to DICOMweb for browser viewers (OHIF served from another origin).

Only the configured origins (``PACSYNC_DICOMWEB_ORIGINS``, comma-separated, ``*`` for
any) get ``Access-Control-Allow-Origin``, and only on ``/api/v1/dicomweb``: every
response there carries it, errors and multipart bodies too, because the middleware
sits outside Starlette's own error handling (see :func:`install`).  A preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) is answered 204 here, before any
authentication: browsers send it without credentials.  No cookies are used (the token
travels in ``Authorization``), so credentials are never allowed.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacsync.config import Settings

PATH_PREFIX = "/api/v1/dicomweb"
ALLOW_HEADERS = "accept, authorization"
EXPOSE_HEADERS = "content-length, content-range, content-type, warning, x-request-id"
MAX_AGE_S = "600"


def origins_of(setting: str) -> frozenset[str]:
    """The allowed origins of ``PACSYNC_DICOMWEB_ORIGINS`` (trailing slashes dropped)."""
    return frozenset(o.strip().rstrip("/") for o in setting.split(",") if o.strip())


class DicomWebCors:
    """CORS headers and preflights for the DICOMweb routes."""

    def __init__(self, app: ASGIApp, origins: frozenset[str], *, stow: bool) -> None:
        self.app = app
        self.origins = origins
        self.methods = "GET, POST" if stow else "GET"
        # STOW-RS sends Content-Type multipart/related, which needs a preflight to allow it
        self.headers = f"{ALLOW_HEADERS}, content-type" if stow else ALLOW_HEADERS

    def allowed(self, origin: str | None) -> str | None:
        """The value of Access-Control-Allow-Origin for ``origin``, None when refused."""
        if not origin or not self.origins:
            return None
        if "*" in self.origins:
            return "*"
        return origin if origin.rstrip("/") in self.origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(PATH_PREFIX):
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        allow = self.allowed(request_headers.get("origin"))
        preflight = scope["method"] == "OPTIONS" and (
            "access-control-request-method" in request_headers
        )
        if preflight:
            await self._preflight(allow, send)
            return
        if allow is None:
            await self.app(scope, receive, send)
            return
        extra = [
            (b"access-control-allow-origin", allow.encode("latin-1")),
            (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
            (b"vary", b"Origin"),
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, allow: str | None, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if allow is not None:
            headers += [
                (b"access-control-allow-origin", allow.encode("latin-1")),
                (b"access-control-allow-methods", self.methods.encode()),
                (b"access-control-allow-headers", self.headers.encode()),
                (b"access-control-max-age", MAX_AGE_S.encode()),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def install(app: FastAPI, settings: Settings) -> None:
    """Wrap the whole middleware stack of ``app`` (its error handling included) in
    :class:`DicomWebCors`, so that a 500 answered by Starlette carries the headers too."""
    origins = origins_of(settings.dicomweb_origins)
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def wrapped() -> ASGIApp:
        return DicomWebCors(build(), origins, stow=settings.dicomweb_stow)

    app.build_middleware_stack = wrapped  # type: ignore[method-assign]
