"""FHIR server answers turned into pacsync errors, at the edge.

Every status a FHIR server can answer with maps to one coded error, marked transient or
terminal (pacsync.errors), with the server's OperationOutcome diagnostics in the message:

=========================  ======================================  =========
HTTP                       error                                   marker
=========================  ======================================  =========
401, 403                   FhirAuthRejected        PACS-701        terminal
404, 410                   FhirResourceNotFound    PACS-702        terminal
409                        FhirConflict            PACS-703        terminal
412                        FhirPreconditionFailed  PACS-704        terminal
429                        FhirRateLimited         PACS-706        transient
500-599, timeouts, resets  FhirServerUnavailable   PACS-705        transient
other 4xx                  FhirRequestRejected     PACS-707        terminal
=========================  ======================================  =========
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from pacsync.errors import (
    FhirAuthRejected,
    FhirConflict,
    FhirPreconditionFailed,
    FhirRateLimited,
    FhirRequestRejected,
    FhirResourceNotFound,
    FhirServerUnavailable,
    PacsyncError,
)

_MAX_DIAGNOSTICS = 300


def retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (None when absent
    or unreadable; never negative)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def diagnostics(body: Any) -> str:
    """The issues of an OperationOutcome (or an OAuth error) as one short line."""
    if isinstance(body, dict):
        if body.get("resourceType") == "OperationOutcome":
            texts = []
            for issue in body.get("issue") or []:
                if not isinstance(issue, dict):
                    continue
                text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
                texts.append(str(text or issue.get("code") or "issue"))
            return "; ".join(texts)[:_MAX_DIAGNOSTICS]
        if "error" in body:  # RFC 6749 error response of a token endpoint
            return " ".join(str(body[k]) for k in ("error", "error_description") if body.get(k))[
                :_MAX_DIAGNOSTICS
            ]
    return ""


def _body(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return None


def error_for(response: httpx.Response, what: str, connection: str | None = None) -> PacsyncError:
    """The error for a FHIR server's answer with an error status to ``what`` (e.g.
    ``"PUT Patient/7"``)."""
    status = response.status_code
    said = diagnostics(_body(response)) or response.reason_phrase or "no details"
    message = f"{what}: HTTP {status}: {said}"
    error: PacsyncError
    if status in (401, 403):
        error = FhirAuthRejected(message, connection=connection)
    elif status in (404, 410):
        error = FhirResourceNotFound(message, connection=connection)
    elif status == 409:
        error = FhirConflict(message, connection=connection)
    elif status == 412:
        error = FhirPreconditionFailed(message, connection=connection)
    elif status == 429:
        error = FhirRateLimited(message, connection=connection)
        error.retry_after = retry_after(response.headers.get("Retry-After"))
    elif status >= 500:
        error = FhirServerUnavailable(message, connection=connection)
        error.retry_after = retry_after(response.headers.get("Retry-After"))
    else:
        error = FhirRequestRejected(message, connection=connection)
    return error


@contextmanager
def transport_errors(what: str, connection: str | None = None) -> Iterator[None]:
    """httpx's network errors (refused, reset, timed out) as FhirServerUnavailable."""
    try:
        yield
    except httpx.TimeoutException as error:
        raise FhirServerUnavailable(
            f"{what}: timed out ({type(error).__name__})",
            hint="The server did not answer in time; raise timeout_s if it is slow.",
            connection=connection,
        ) from error
    except httpx.TransportError as error:
        raise FhirServerUnavailable(
            f"{what}: {type(error).__name__}: {error}", connection=connection
        ) from error
