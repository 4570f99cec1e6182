"""``/connections``: endpoints managed here (passwords sealed, never shown) and, read-only,
those declared in pipeline files (named ``<pipeline>.<connection>``)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, StateDep, Viewer
from pacsync.api.schemas_admin import (
    CONNECTION_NAME,
    CONNECTION_REF,
    Connection,
    ConnectionDeleted,
    ConnectionPut,
    ConnectionTest,
)
from pacsync.bootstrap import health
from pacsync.config import Settings, list_pipelines, load_pipeline
from pacsync.db.connections import ConnectionView, masked, split_password
from pacsync.domain.access import Role
from pacsync.domain.spec import FOLDER_SCHEME, MLLP_SCHEME
from pacsync.errors import InvalidState, NotFound, PacsyncError, UnsupportedFeature

router = APIRouter(prefix="/connections", tags=["connections"], responses=AUTHENTICATED)
Name = Annotated[str, Path(pattern=CONNECTION_NAME, examples=["warehouse"])]
Ref = Annotated[
    str,
    Path(pattern=CONNECTION_REF, description="a connection, or <pipeline>.<connection>"),
]
TEST_TIMEOUT_S = 5.0
_LIST_HINT = "List the connections: GET /api/v1/connections."


def _stored(view: ConnectionView) -> Connection:
    url, options = masked(view.url, view.options)  # a row stored before such were refused
    return Connection(
        name=view.name,
        kind=view.kind,
        url=url,
        options=options,
        password_set=view.password_set,
        origin="store",
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def _declared(settings: Settings) -> dict[str, tuple[Connection, str]]:
    """Connections of the pipeline files that load, by ``<pipeline>.<name>``, with their
    URLs (password included, for testing)."""
    found: dict[str, tuple[Connection, str]] = {}
    for path in list_pipelines(settings):
        try:
            spec = load_pipeline(path)
        except PacsyncError:
            continue  # GET /pipelines reports files that do not load
        for name, declared in spec.connections.items():
            bare, password = split_password(declared.url)
            url, options = masked(bare, declared.options)
            ref = f"{spec.name}.{name}"
            connection = Connection(
                name=ref,
                kind="sql",
                url=url,
                options=options,
                password_set=password is not None,
                origin="pipeline",
                pipeline=spec.name,
            )
            found[ref] = (connection, declared.url)
    return found


@router.get("", summary="Every connection: managed ones, then those of pipeline files")
def list_connections(state: StateDep, _who: Viewer) -> list[Connection]:
    stored = [_stored(v) for v in state.store.connections.list()]
    return stored + [c for c, _ in _declared(state.settings).values()]


def _find(state: StateDep, ref: str) -> tuple[Connection, str | None]:
    """The connection and, for a pipeline's, its URL (a stored one's is opened on use)."""
    view = state.store.connections.get(ref)
    if view is not None:
        return _stored(view), None
    declared = _declared(state.settings).get(ref)
    if declared is None:
        raise NotFound(f"no connection '{ref}'", hint=_LIST_HINT)
    return declared


@router.get(
    "/{name}", summary="One connection (never its password)", responses=problems.responses(404)
)
def get_connection(name: Ref, state: StateDep, _who: Viewer) -> Connection:
    return _find(state, name)[0]


@router.put(
    "/{name}",
    summary="Create or replace a connection; a password is sealed (admin)",
    responses={
        201: {"model": Connection, "description": "a new connection was created"},
        **problems.responses(400),
    },
)
def put_connection(
    name: Name,
    body: ConnectionPut,
    response: Response,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("connection.put", Role.ADMIN, "name")],
) -> Connection:
    connections = state.store.connections
    created = connections.get(name) is None
    view = connections.put(name, body.kind, body.url, body.options, body.password)
    entry.outcome = "created" if created else "replaced"
    entry.detail = {"kind": body.kind, "password_set": view.password_set}
    response.status_code = 201 if created else 200
    return _stored(view)


@router.delete(
    "/{name}",
    summary="Delete a managed connection (admin)",
    responses=problems.responses(404, 409),
)
def delete_connection(
    name: Ref,
    state: StateDep,
    _entry: Annotated[AuditEntry, Audit("connection.delete", Role.ADMIN, "name")],
) -> ConnectionDeleted:
    if state.store.connections.delete(name):
        return ConnectionDeleted(name=name)
    connection, _ = _find(state, name)
    raise InvalidState(
        f"connection '{name}' is declared in pipeline '{connection.pipeline}'",
        hint="Edit or remove it in the pipeline file (PUT /api/v1/pipelines/{name}).",
    )


@router.post(
    "/{name}/test",
    summary="Connect with a short timeout and report how it went (admin)",
    responses=problems.responses(404),
)
def test_connection(
    name: Ref,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("connection.test", Role.ADMIN, "name")],
) -> ConnectionTest:
    connection, url = _find(state, name)
    began = time.perf_counter()
    secret: str | None = None
    try:
        if url is None:
            url = state.store.connections.resolved_url(name)
        secret = split_password(url)[1]
        _testable(url, connection.kind)
        detail = health.connection_check(url, TEST_TIMEOUT_S)()
    except PacsyncError as error:
        entry.outcome = error.code
        return ConnectionTest(
            name=name,
            status="failed",
            code=error.code,
            message=_masked(error.message, secret),
            hint=error.hint,
            response_ms=_ms(began),
        )
    except Exception as exc:  # a driver's own error: reported, never a server error
        entry.outcome = "failed"
        return ConnectionTest(
            name=name,
            status="failed",
            code=PacsyncError.code,
            message=f"the driver failed: {type(exc).__name__}",
            hint="Check the URL's options and the driver's documentation.",
            response_ms=_ms(began),
        )
    entry.outcome = "ok"
    return ConnectionTest(
        name=name, status="ok", message=detail or "connected", response_ms=_ms(began)
    )


def _testable(url: str, kind: str) -> None:
    """SQL connections are tested by connecting, MLLP receivers and drop folders too."""
    if url.startswith((MLLP_SCHEME, FOLDER_SCHEME)):
        return
    try:
        make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError):
        raise UnsupportedFeature(
            f"testing a connection of kind '{kind}' is not supported (not a database URL)",
            hint="Database (SQLAlchemy URL), mllp:// and file: connections can be tested here.",
        ) from None


def _masked(message: str, secret: str | None) -> str:
    return message.replace(secret, "***") if secret else message


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 1)
