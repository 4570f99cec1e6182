"""A FHIR R4 REST client over httpx: read, search (paged, incremental by
``_lastUpdated``), conditional create, update with If-Match, delete.

Every request goes through :meth:`FhirClient.send`: the bearer token of the
connection's :class:`~pacsync.connectors.fhir.auth.TokenSource` is attached (a 401 drops
it and the request is sent once more with a fresh one), error answers become coded
errors (:mod:`~pacsync.connectors.fhir.outcomes`), and a transient failure is tried
again as :func:`pacsync.jobs.retry.decide` says — waiting at least a 429's Retry-After.
A request that may not be repeated safely (a POST without If-None-Exist) is not retried
here after a 5xx or a timeout: the server may have done it already; the job decides.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx

from pacsync.connectors.fhir import paging, validation
from pacsync.connectors.fhir.auth import TokenSource
from pacsync.connectors.fhir.outcomes import error_for, transport_errors
from pacsync.domain.fhir_resource import Versioned, etag_of
from pacsync.errors import (
    FhirProtocolError,
    FhirRateLimited,
    FhirRequestRejected,
    FhirResourceNotFound,
    InvalidRequest,
    PacsyncError,
)
from pacsync.jobs.retry import RetryPolicy, decide

JSON = dict[str, Any]
__all__ = ["FhirClient", "Versioned", "etag_of", "fhir_instant"]
FHIR_JSON = "application/fhir+json"
Params = Mapping[str, str] | Sequence[tuple[str, str]]


def fhir_instant(when: dt.datetime) -> str:
    """A FHIR instant (UTC, seconds precision) for search prefixes such as ``gt``."""
    if when.tzinfo is None:
        raise InvalidRequest(f"{when} has no time zone", hint="Give a time with its offset (Z).")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FhirClient:
    def __init__(
        self,
        base_url: str,
        http: httpx.Client,
        *,
        tokens: TokenSource | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        connection: str | None = None,
        page_size: int = 200,
        validate: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.tokens = tokens
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.connection = connection
        self.page_size = page_size
        self.validate = validate
        self.requests = 0  # sent, retries included

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the wire ----------------------------------------------------------------------

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        ok: Sequence[int] = (),
        authorize: bool = True,
    ) -> httpx.Response:
        """The server's answer to one request, after retries; an error status (other than
        those in ``ok``) raises its coded error.  A streamed answer must be closed.
        ``authorize=False`` sends no token (a Bulk file a server says needs none)."""
        url = self.url(path)
        what = f"{method} {url.removeprefix(self.base_url + '/')}"
        sent_headers = {"Accept": FHIR_JSON, **(headers or {})}
        if json is not None:
            sent_headers["Content-Type"] = FHIR_JSON
        repeatable = method in ("GET", "HEAD", "PUT", "DELETE") or "If-None-Exist" in sent_headers
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            token = self.tokens.token().value if self.tokens and authorize else None
            if token:
                sent_headers["Authorization"] = f"Bearer {token}"
            request = self.http.build_request(
                method, url, params=_query(params), json=json, headers=sent_headers
            )
            try:
                with transport_errors(what, self.connection):
                    self.requests += 1
                    response = self.http.send(request, stream=stream)
                if response.status_code < 400 or response.status_code in ok:
                    return response
                if stream:
                    response.read()
                    response.close()
                if response.status_code == 401 and self.tokens and token and not renewed:
                    self.tokens.invalidate(token)  # expired or revoked: one fresh token
                    renewed = True
                    attempt -= 1
                    continue
                raise error_for(response, what, self.connection)
            except PacsyncError as error:
                if not (repeatable or isinstance(error, FhirRateLimited)):
                    raise
                decision = decide(error, attempt, self.retry)
                if not decision.retry:
                    raise
                self.sleep(decision.delay)

    def json(self, method: str, path: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        response = self.send(method, path, **kwargs)
        if not response.content:
            return None, response
        try:
            return response.json(), response
        except ValueError:
            raise FhirProtocolError(
                f"{method} {path}: the answer is not JSON "
                f"({response.headers.get('Content-Type', 'no content type')})",
                connection=self.connection,
            ) from None

    def _versioned(self, body: Any, response: httpx.Response, what: str) -> Versioned:
        if self.validate and body is not None:
            body = validation.check(body, ours=False, what=what)
        if not isinstance(body, dict):
            raise FhirProtocolError(f"{what}: the server answered without the resource")
        return Versioned(
            body,
            response.headers.get("ETag"),
            response.status_code,
            response.headers.get("Location"),
        )

    # -- interactions ------------------------------------------------------------------

    def capabilities(self) -> JSON:
        """The CapabilityStatement (asked for without a token: servers serve it to all)."""
        body, _ = self.json("GET", "metadata", authorize=False)
        if not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
            raise FhirProtocolError(
                f"{self.base_url}/metadata is not a CapabilityStatement",
                hint="Check the base URL: it is the FHIR root, e.g. https://host/fhir/R4.",
                connection=self.connection,
            )
        return body

    def read(self, resource_type: str, resource_id: str) -> Versioned:
        body, response = self.json("GET", f"{resource_type}/{resource_id}")
        return self._versioned(body, response, f"{resource_type}/{resource_id}")

    def search_pages(self, resource_type: str, params: Params | None = None) -> Iterator[JSON]:
        """The searchset pages of a search (GET), following next links."""
        query = list(params.items() if isinstance(params, Mapping) else params or [])
        if not any(name == "_count" for name, _ in query):
            query.append(("_count", str(self.page_size)))
        first, _ = self.json("GET", resource_type, params=query)

        def fetch(url: str) -> Any:
            return self.json("GET", url)[0]

        yield from paging.walk(first, fetch, self.base_url)

    def search(self, resource_type: str, params: Params | None = None) -> Iterator[JSON]:
        """Every matching resource of a search, page after page (validated)."""
        for page in self.search_pages(resource_type, params):
            for resource in paging.entries(page):
                if self.validate:
                    validation.check(resource, ours=False, what=resource_type)
                yield resource

    def changed_since(
        self, resource_type: str, since: dt.datetime, params: Params | None = None
    ) -> Iterator[JSON]:
        """Resources changed after ``since``, oldest first (``_lastUpdated=gt…``)."""
        query = list(params.items() if isinstance(params, Mapping) else params or [])
        query += [("_lastUpdated", f"gt{fhir_instant(since)}"), ("_sort", "_lastUpdated")]
        yield from self.search(resource_type, query)

    def deleted_since(self, resource_type: str, since: dt.datetime) -> Iterator[str]:
        """Ids deleted after ``since`` whose latest version is the deletion, from the
        type's history (``Type/_history?_since``, newest first).  A server that keeps no
        history (404, 400, 405: refused) gives nothing: a full sync finds its deletions."""
        stamp = since.astimezone(dt.UTC).isoformat(timespec="milliseconds")
        query = [("_since", stamp.replace("+00:00", "Z")), ("_count", str(self.page_size))]
        try:
            first, _ = self.json("GET", f"{resource_type}/_history", params=query)
        except (FhirResourceNotFound, FhirRequestRejected):
            return
        seen: set[str] = set()

        def fetch(url: str) -> Any:
            return self.json("GET", url)[0]

        for page in paging.walk(first, fetch, self.base_url):
            for entry in page.get("entry") or []:
                if not isinstance(entry, dict):
                    continue
                request = entry.get("request") or {}
                resource = entry.get("resource") or {}
                rid = resource.get("id") or str(request.get("url") or "").rsplit("/", 1)[-1]
                if not rid or rid in seen:
                    continue
                seen.add(rid)  # newest first: the first entry of an id is its latest
                if request.get("method") == "DELETE":
                    yield rid

    def create(self, resource: JSON, *, if_none_exist: Params | None = None) -> Versioned:
        """POST the resource; with ``if_none_exist`` a conditional create (status 200 and
        the existing resource when one already matches)."""
        rtype = self._type_of(resource)
        headers = {"Prefer": "return=representation"}
        if if_none_exist:
            pairs = if_none_exist.items() if isinstance(if_none_exist, Mapping) else if_none_exist
            headers["If-None-Exist"] = urlencode(list(pairs))
        body, response = self.json("POST", rtype, json=resource, headers=headers)
        return self._versioned(body, response, rtype)

    def update(self, resource: JSON, *, if_match: str | None = None) -> Versioned:
        """PUT the resource at its id; with ``if_match`` (an ETag or a version id) only if
        the server still holds that version (else FhirPreconditionFailed, PACS-704)."""
        rtype = self._type_of(resource)
        rid = resource.get("id")
        if not rid:
            raise InvalidRequest(f"an update of a {rtype} needs its id")
        headers = {"Prefer": "return=representation"}
        if if_match:
            headers["If-Match"] = if_match if '"' in if_match else etag_of(if_match) or ""
        body, response = self.json("PUT", f"{rtype}/{rid}", json=resource, headers=headers)
        return self._versioned(body, response, f"{rtype}/{rid}")

    def conditional_update(self, resource: JSON, criteria: Params) -> Versioned:
        """PUT [type]?criteria: updates the one match, creates when none matches."""
        rtype = self._type_of(resource)
        body, response = self.json(
            "PUT",
            rtype,
            params=criteria,
            json=resource,
            headers={"Prefer": "return=representation"},
        )
        return self._versioned(body, response, rtype)

    def transaction(self, bundle: JSON) -> JSON:
        """POST a transaction or batch Bundle to the base URL; the response Bundle.  A
        transaction is all or nothing on the server, so it is not repeated after a 5xx."""
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in (
            "transaction",
            "batch",
        ):
            raise InvalidRequest("only a transaction or batch Bundle is posted to the base URL")
        body, _ = self.json("POST", "", json=bundle)
        return paging.require_bundle(body, f"{bundle['type']} response")

    def delete(self, resource_type: str, resource_id: str) -> None:
        self.send("DELETE", f"{resource_type}/{resource_id}", ok=(404, 410))

    def _type_of(self, resource: JSON) -> str:
        if self.validate:
            validation.check(resource, ours=True)
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            raise InvalidRequest("a resource needs its resourceType")
        return rtype


def _query(params: Params | None) -> httpx.QueryParams | None:
    if params is None:
        return None
    return httpx.QueryParams(list(params.items() if isinstance(params, Mapping) else params))
