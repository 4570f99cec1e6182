"""ASGI middleware: request ids, the request body limit, NUL characters refused, and
request latency.

Written against raw ASGI (no ``BaseHTTPMiddleware``) so a body is never read
whole before the limit is checked and streaming responses pass straight through.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from prometheus_client import Histogram
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacsync.api import problems
from pacsync.errors import InvalidRequest

MAX_BODY_BYTES = 1024 * 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestId:
    """Every response carries ``X-Request-Id``: the caller's, when it is a sane token,
    else a new one; the handlers find it at ``request.state.request_id``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyRefused(problems.ProblemException):
    """A request refused for what its body holds, found while the body is read."""


class BodyTooLarge(BodyRefused):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            InvalidRequest(
                f"the request body is over the limit of {limit:,} bytes",
                hint="Send a smaller body; split large uploads.",
            ),
            {"Connection": "close"},
        )


class NulRefused(BodyRefused):
    def __init__(self, where: str) -> None:
        super().__init__(
            400,
            InvalidRequest(
                f"the request's {where} holds a NUL character",
                hint="Remove NUL characters (\\u0000, %00): no pacsync value holds one, "
                "and a PostgreSQL store cannot keep one.",
            ),
        )


async def _checking_body(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, check: Callable[[bytes], None]
) -> None:
    """Run ``app`` with every body chunk passed to ``check`` as it is read; what ``check``
    refuses before the response has started is answered as its problem document."""
    started = False

    async def checked_receive() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            check(message.get("body", b""))
        return message

    async def watched_send(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, checked_receive, watched_send)
    except BodyRefused as refused:  # raised outside the routes' error handling
        if started:
            raise
        await _reject(refused, scope, receive, send)


class BodyLimit:
    """413 for a body over ``max_bytes``: at once when Content-Length says so, else as
    soon as the chunks read add up to more (nothing past the limit is read).  Requests
    ``exempt`` says are uploads (STOW-RS) are left to their route's own limit."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        exempt: Callable[[Scope], bool] = lambda scope: False,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _reject(BodyTooLarge(self.max_bytes), scope, receive, send)
            return
        seen = 0

        def count(chunk: bytes) -> None:
            nonlocal seen
            seen += len(chunk)
            if seen > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)

        await _checking_body(self.app, scope, receive, send, count)


_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # \u0000, not an escaped \ before u0000
_JSON_TAIL = 64  # bytes of the previous chunk kept, for an escape split between chunks


class NoNul:
    """400 for a NUL character in the path, the query or a JSON body: the store would
    refuse it (PostgreSQL) or keep it (SQLite), and no pacsync value holds one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = _nul_in_url(scope)
        if where is not None:
            await _reject(NulRefused(where), scope, receive, send)
            return
        media = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
        if not (media == "application/json" or media.endswith("+json")):
            await self.app(scope, receive, send)
            return
        tail = b""

        def scan(chunk: bytes) -> None:
            nonlocal tail
            window = tail + chunk
            if _JSON_NUL.search(window):
                raise NulRefused("body")
            tail = window[-_JSON_TAIL:]

        await _checking_body(self.app, scope, receive, send, scan)


def _nul_in_url(scope: Scope) -> str | None:
    if "\x00" in scope.get("path", ""):
        return "path"
    if b"%00" in scope.get("query_string", b"") or b"\x00" in scope.get("query_string", b""):
        return "query"
    return None


async def _reject(
    refused: problems.ProblemException, scope: Scope, receive: Receive, send: Send
) -> None:
    response = problems.from_error(
        refused.error, refused.status_code, dict(refused.headers or {}), Request(scope, receive)
    )
    await response(scope, receive, send)


class RequestLatency:
    """Observes each request's duration by method, route template (as its router declares
    it, without the /api/v1 the app mounts it under) and status."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.histogram.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - began
            )
