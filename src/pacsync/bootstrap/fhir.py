"""FHIR servers wired: connections of kind ``fhir`` (an EHR's FHIR R4 API), the client of
one with its SMART Backend Services key, and what the commands ask of them — a check
of the server step by step, a Bulk export into a folder."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pacsync import bootstrap
from pacsync.connectors.fhir.auth import (
    ClientAssertion,
    PrivateKey,
    TokenSource,
    key_from_file,
    load_private_key,
)
from pacsync.connectors.fhir.bulk import BulkExport, ExportedFile, ExportRequest, ExportResult
from pacsync.connectors.fhir.client import FhirClient
from pacsync.db.connections import split_password
from pacsync.domain.fhir_endpoint import FhirEndpoint
from pacsync.errors import ConfigError, NotFound, PacsyncError
from pacsync.jobs.retry import RetryPolicy
from pacsync.ports import FhirServer

KIND = "fhir"


def add_connection(
    store: bootstrap.Store,
    name: str,
    url: str,
    options: dict[str, Any],
    *,
    key_pem: str | None = None,
) -> FhirEndpoint:
    """Validate and store a FHIR connection (create or replace).  ``key_pem`` (the private
    key's PEM text) is sealed as the connection's secret; without it a sealed key is kept."""
    held = store.connections.get(name)
    if held is not None and held.kind == KIND and "sync" in held.options and "sync" not in options:
        options = {**options, "sync": held.options["sync"]}  # what notifications start stays
    endpoint = FhirEndpoint.of(name, url, options)
    if key_pem is not None:
        load_private_key(key_pem, f"the key of connection '{name}'")
    elif endpoint.key_path:
        key_from_file(endpoint.key_path)  # refuse an unreadable key now, not at the first sync
    store.connections.put(name, KIND, endpoint.base_url, options, password=key_pem)
    return endpoint


def endpoint(store: bootstrap.Store, name: str) -> FhirEndpoint:
    view = store.connections.get(name)
    if view is None or view.kind != KIND:
        raise NotFound(
            f"no FHIR connection '{name}'",
            hint="List them with `pacsync fhir connection list`; add one with "
            "`pacsync fhir connection add NAME URL --client-id … --key PEM --token-url …`.",
        )
    return FhirEndpoint.of(name, view.url, view.options)


def endpoints(store: bootstrap.Store) -> list[tuple[FhirEndpoint, bool]]:
    """Every FHIR connection, and whether its key is sealed in the store."""
    return [
        (FhirEndpoint.of(v.name, v.url, v.options), v.password_set)
        for v in store.connections.list()
        if v.kind == KIND
    ]


def private_key(store: bootstrap.Store, target: FhirEndpoint) -> PrivateKey:
    if target.key_path:
        return key_from_file(target.key_path)
    _, sealed = split_password(store.connections.resolved_url(target.name))
    if sealed:
        return load_private_key(sealed, f"the sealed key of connection '{target.name}'")
    raise ConfigError(
        f"FHIR connection '{target.name}' has a client id but no private key",
        hint="Add it again with --key PEM (a path kept in the options) or --key PEM --seal-key.",
    )


def client(store: bootstrap.Store, name: str, *, retry: bool = True) -> FhirClient:
    """A client of the named connection (authenticated when it has a client id);
    ``retry=False``: every request tried once (a check says at once what fails)."""
    target = endpoint(store, name)
    http = httpx.Client(timeout=target.timeout_s, follow_redirects=False)
    tokens = None
    if target.client_id and target.oauth_url:
        assertion = ClientAssertion(
            target.client_id, target.oauth_url, private_key(store, target), kid=target.kid
        )
        tokens = TokenSource(assertion, target.scope, http, connection=name)
    attempts = target.retry.attempts if retry else 1
    return FhirClient(
        target.base_url,
        http,
        tokens=tokens,
        retry=RetryPolicy(attempts=attempts, base_delay=target.retry.backoff_s),
        connection=name,
        page_size=target.page_size,
    )


def server(store: bootstrap.Store, name: str) -> FhirServer:
    """The named connection as the port a sync reads and writes through."""
    return client(store, name)


# -- check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool | None  # None: skipped
    detail: str
    seconds: float = 0.0
    error: PacsyncError | None = None


def _timed(name: str, action: Callable[[], str]) -> Step:
    started = time.perf_counter()
    try:
        detail = action()
    except PacsyncError as error:
        return Step(name, False, f"{error.code} {error.message}", time.perf_counter() - started,
                    error)  # fmt: skip
    return Step(name, True, detail, time.perf_counter() - started)


def check(store: bootstrap.Store, name: str) -> list[Step]:
    """The server's CapabilityStatement, a token, a search: each step with its outcome."""
    target = endpoint(store, name)
    steps: list[Step] = []
    with client(store, name, retry=False) as fhir:

        def capability() -> str:
            statement = fhir.capabilities()
            software = (statement.get("software") or {}).get("name") or "unnamed software"
            rest = (statement.get("rest") or [{}])[0]
            types = len(rest.get("resource") or [])
            return f"FHIR {statement.get('fhirVersion', '?')}, {software}, {types} resource types"

        steps.append(_timed("capability statement", capability))

        def token() -> str:
            assert fhir.tokens is not None
            got = fhir.tokens.token()
            left = got.expires_at - fhir.tokens.clock()
            return f"client {target.client_id}: token for '{got.scope}', {left:.0f} s to live"

        if fhir.tokens is None:
            steps.append(Step("authorization", None, "no client id: no authorization"))
        else:
            steps.append(_timed("authorization", token))

        def search() -> str:
            page = next(fhir.search_pages("Patient", {"_count": "1"}))
            total = page.get("total")
            return f"Patient search answered ({'?' if total is None else total} in all)"

        if steps[-1].ok is False:
            steps.append(Step("search", None, "not tried without a token"))
        else:
            steps.append(_timed("search", search))
    return steps


# -- export ----------------------------------------------------------------------------


def last_transaction_time(into: Path) -> dt.datetime | None:
    """The transactionTime of the complete export in ``into`` (its manifest), if any."""
    import json

    from pacsync.connectors.fhir.bulk import MANIFEST

    try:
        text = json.loads((into / MANIFEST).read_text())["transactionTime"]
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def export(
    store: bootstrap.Store,
    name: str,
    into: Path,
    *,
    types: Sequence[str] = (),
    since: dt.datetime | None = None,
    group: str | None = None,
    max_wait_s: float = 3600.0,
    progress: Callable[[str], None] = lambda _: None,
    downloaded: Callable[[ExportedFile], None] = lambda _: None,
) -> ExportResult:
    """A Bulk $export of the connection into the folder, at the level its vendor offers
    (Group when a group is given or configured)."""
    target = endpoint(store, name)
    path = target.profile.export_path(group or target.group)
    request = ExportRequest(path=path, types=tuple(types), since=since)
    with client(store, name) as fhir:
        bulk = BulkExport(fhir, max_wait_s=max_wait_s, progress=progress, downloaded=downloaded)
        return bulk.run(request, into)
