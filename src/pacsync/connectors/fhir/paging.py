"""Paging through a FHIR search: a searchset Bundle's ``next`` link, page after page.

A next link is followed only when it is an http(s) URL on the server's own origin (the
access token is never sent elsewhere) and not one already followed (a server that links
a page to itself would loop forever).  A next link the server itself cannot answer
(4xx other than 401/403), or that answers with something other than a Bundle, is a
*broken next link*:
FhirProtocolError (terminal) naming the page, so a sync stops with a clear reason
instead of taking a truncated result for the whole.  Transient failures (429, 5xx,
timeouts) stay transient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from pacsync.errors import AuthenticationFailed, FhirProtocolError, PacsyncError

JSON = dict[str, Any]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def require_bundle(body: Any, what: str) -> JSON:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        kind = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
        raise FhirProtocolError(f"{what}: expected a Bundle, got {kind}")
    return body


def link(bundle: JSON, relation: str) -> str | None:
    for item in bundle.get("link") or []:
        if isinstance(item, dict) and item.get("relation") == relation and item.get("url"):
            return str(item["url"])
    return None


def next_url(bundle: JSON, base_url: str, seen: set[str], page: int) -> str | None:
    """The absolute URL of the page after ``bundle``, checked (see the module docstring);
    None on the last page."""
    raw = link(bundle, "next")
    if raw is None:
        return None
    url = urljoin(base_url.rstrip("/") + "/", raw)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FhirProtocolError(
            f"page {page}: the Bundle's next link {raw!r} is not an http(s) URL"
        )
    if _origin(url) != _origin(base_url):
        raise FhirProtocolError(
            f"page {page}: the Bundle's next link {raw!r} leaves the server {base_url}",
            hint="The server's next links point to another host (a proxy or base URL "
            "setting of the server); fix its public base URL.",
        )
    if url in seen:
        raise FhirProtocolError(f"page {page}: the Bundle's next link repeats an earlier page")
    return url


def entries(bundle: JSON, mode: str | None = "match") -> Iterator[JSON]:
    """The resources of a page (only the search matches, unless ``mode`` is None)."""
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        found = (entry.get("search") or {}).get("mode", "match")
        if mode is None or found == mode:
            yield resource


def walk(first: JSON, fetch: Callable[[str], Any], base_url: str) -> Iterator[JSON]:
    """``first`` and every page after it, fetched with ``fetch(url)`` (which returns the
    parsed body or raises a pacsync error)."""
    page = 1
    bundle = require_bundle(first, "search")
    seen: set[str] = set()
    while True:
        yield bundle
        url = next_url(bundle, base_url, seen, page)
        if url is None:
            return
        seen.add(url)
        page += 1
        try:
            body = fetch(url)
        except PacsyncError as error:
            if error.transient or isinstance(error, AuthenticationFailed):
                raise
            raise FhirProtocolError(
                f"page {page}: the Bundle's next link is broken ({error.message})",
                hint="The server could not serve its own next page; the search stops here "
                "and nothing after it is taken as read. Run it again; if it persists, "
                "lower page_size or report it to the server's vendor.",
                connection=error.connection,
            ) from error
        bundle = require_bundle(body, f"page {page}")
