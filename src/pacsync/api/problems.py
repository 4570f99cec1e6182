"""Every error the API returns, as an RFC 9457 ``application/problem+json`` document.

``{type, title, status, detail, code, hint, errors?}``: ``code`` is the PACS code
users search for, ``errors`` lists the fields a request got wrong.  A pacsync
error maps to a status by its class and code; anything else is a 500 that says
nothing of the internals (the details go to the log with the request id).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from pacsync.api.schemas import Problem
from pacsync.errors import (
    AuthenticationFailed,
    InvalidRequest,
    InvalidState,
    NotFound,
    PacsyncError,
    RateLimited,
)

log = logging.getLogger("pacsync.api")

MEDIA_TYPE = "application/problem+json"
Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]
TYPE_PREFIX = "urn:pacsync:problem:"

_BY_CLASS: tuple[tuple[type[PacsyncError], int], ...] = (
    (NotFound, 404),
    (InvalidState, 409),
    (RateLimited, 429),
)
_BY_CODE = {
    "PACS-002": 401,
    "PACS-003": 422,
    "PACS-004": 422,
    "PACS-007": 409,
    "PACS-101": 422,
    "PACS-102": 404,
    "PACS-103": 400,
    "PACS-105": 400,
    "PACS-201": 503,
    "PACS-301": 502,
    "PACS-401": 422,
    "PACS-402": 503,
    "PACS-501": 502,
    "PACS-502": 502,
}
# plain HTTP errors (routing, methods, media types) and the PACS code they report
_CODE_OF_STATUS = {401: "PACS-002", 403: "PACS-002", 404: "PACS-104", 409: "PACS-107"}
_HINT_OF_STATUS = {
    404: "Check the path; the API's routes are listed at /docs.",
    405: "Check the method; the API's routes are listed at /docs.",
}


class ProblemException(HTTPException):
    """A pacsync error answered with a chosen status and headers (401 with
    WWW-Authenticate, 403, 413, 429 with Retry-After)."""

    def __init__(
        self, status: int, error: PacsyncError, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status, detail=error.message, headers=headers)
        self.error = error


def status_of(error: PacsyncError) -> int:
    for cls, status in _BY_CLASS:
        if isinstance(error, cls):
            return status
    if error.code in _BY_CODE:
        return _BY_CODE[error.code]
    return 503 if error.transient else 500


def problem(
    status: int,
    *,
    detail: str,
    code: str,
    hint: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    request: Request | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "hint": hint,
    }
    if errors is not None:
        body["errors"] = errors
    all_headers = dict(headers or {})
    request_id = _request_id(request)
    if request_id:  # also on responses the request-id middleware never sees (500s)
        all_headers["X-Request-Id"] = request_id
    return JSONResponse(body, status_code=status, headers=all_headers, media_type=MEDIA_TYPE)


def from_error(
    error: PacsyncError,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    request: Request | None = None,
) -> JSONResponse:
    if isinstance(error, AuthenticationFailed) and status in (None, 401):
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return problem(
        status or status_of(error),
        detail=error.message,
        code=error.code,
        hint=error.hint,
        headers=headers,
        request=request,
    )


def _request_id(request: Request | None) -> str | None:
    if request is None:
        return None
    return getattr(request.state, "request_id", None)


def _http_error(allowed: Callable[[str], list[str]]) -> Handler:
    """HTTP errors raised by routing and by routes; a 405 lists in ``Allow`` every
    method of the path (the router would name only those of the first route)."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed(request.url.path)) or headers.get("Allow", "")
        return _http_problem(request, exc, headers)

    return handle


def _http_problem(request: Request, exc: HTTPException, headers: dict[str, str]) -> JSONResponse:
    if isinstance(exc, ProblemException):
        return from_error(exc.error, exc.status_code, headers, request)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    code = "PACS-000" if status >= 500 else _CODE_OF_STATUS.get(status, InvalidRequest.code)
    return problem(
        status,
        detail=detail or f"{phrase}: {request.method} {request.url.path}",
        code=code,
        hint=_HINT_OF_STATUS.get(status, InvalidRequest.default_hint),
        headers=headers,
        request=request,
    )


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    found = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in found):
        reason = next(e.get("ctx", {}).get("error", "") for e in found)
        return problem(
            400,
            detail=f"the body is not valid JSON: {reason}".rstrip(": "),
            code=InvalidRequest.code,
            hint="Send a JSON document with Content-Type: application/json.",
            request=request,
        )
    errors = [
        {
            "field": ".".join(str(part) for part in e.get("loc", ())),
            "message": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in found
    ]
    first = errors[0] if errors else {"field": "?", "message": "invalid"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return problem(
        422,
        detail=f"{first['field']}: {first['message']}{more}",
        code=InvalidRequest.code,
        hint="Fix the fields listed in 'errors'; the schema is at /api/v1/openapi.json.",
        errors=errors,
        request=request,
    )


async def _pacsync_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PacsyncError)
    return from_error(exc, request=request)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = _request_id(request) or "-"
    log.error(
        "unexpected error in %s %s (request %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    return problem(
        500,
        detail=f"the server could not complete the request (request id {request_id})",
        code="PACS-000",
        hint="Try again later; if it persists, give the request id to the administrator.",
        request=request,
    )


def install(app: FastAPI, allowed: Callable[[str], list[str]]) -> None:
    """Answer every error with a problem document; ``allowed(path)``: the methods a
    path accepts, for the Allow header of a 405."""
    app.add_exception_handler(HTTPException, _http_error(allowed))
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(PacsyncError, _pacsync_error)
    app.add_exception_handler(Exception, _unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of problem responses (their media type is set when the
    document is built: see :func:`as_problem_documents`)."""
    return {s: {"model": Problem, "description": HTTPStatus(s).phrase} for s in statuses}


def as_problem_documents(schema: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx/5xx response of an OpenAPI document as ``application/problem+json``."""
    ref = {"$ref": "#/components/schemas/Problem"}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if str(status)[0] in "45":
                    response["content"] = {MEDIA_TYPE: {"schema": ref}}
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
