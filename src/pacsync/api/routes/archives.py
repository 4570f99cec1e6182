"""``/archives``: imaging roots, their scans (as archive-scan jobs), the files that
failed, identity conflicts, and the download of an indexed file; ``/search/{level}``
across every archive."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, StateDep, Viewer
from pacsync.api.dicomweb import BINARY
from pacsync.api.schemas import JobAccepted
from pacsync.api.schemas_imaging import (
    ARCHIVE_NAME,
    Archive,
    ArchiveAdd,
    ArchiveRemoved,
    ConflictResolution,
    IdentityConflict,
    ProblemFile,
)
from pacsync.bootstrap import archives as wiring
from pacsync.bootstrap import jobs as job_layer
from pacsync.db.archives import ArchiveView
from pacsync.domain.access import Role
from pacsync.domain.legacy_mapping import LegacyMapping
from pacsync.errors import InvalidRequest
from pacsync.imaging.search import MAX_OFFSET
from pacsync.imaging.search import Query as SearchQuery

router = APIRouter(tags=["archives"], responses=AUTHENTICATED)
Name = Annotated[str, Path(pattern=ARCHIVE_NAME, examples=["ct-nas"])]
_RESERVED = {"level", "limit", "offset", "archive"}


def _out(view: ArchiveView) -> Archive:
    return Archive(**view.as_dict())


@router.get("/archives", summary="Every archive with its status and index counts")
def list_archives(state: StateDep, _who: Viewer) -> list[Archive]:
    return [_out(v) for v in state.store.archives.list()]


@router.post(
    "/archives",
    status_code=201,
    summary="Add an archive root (admin)",
    responses=problems.responses(400, 422),
)
def add_archive(
    body: ArchiveAdd,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("archive.add", Role.ADMIN)],
) -> Archive:
    entry.target = body.name
    options: dict[str, Any] = {"watch": body.watch}
    if body.kind == "firebird-j2k":
        if not body.dsn:
            raise InvalidRequest(
                "a firebird-j2k archive needs its dsn", hint="Give dsn: host/3050:/path/db.fdb"
            )
        try:
            mapping = LegacyMapping.model_validate(body.mapping or {})
        except ValueError as error:
            raise InvalidRequest(
                str(error).splitlines()[0], hint="Fix the mapping; the detail names the key."
            ) from None
        options |= {
            "dsn": body.dsn,
            "user": body.user,
            "charset": body.charset,
            "mapping": mapping.model_dump(mode="json"),
        }
    elif body.dsn or body.mapping or body.password:
        raise InvalidRequest(
            "dsn, mapping and password are for firebird-j2k archives",
            hint="A dicom archive needs only its path.",
        )
    view = state.store.archives.add(
        body.name,
        body.kind,
        body.path,
        options=options,
        password=body.password,
        rescan_minutes=body.rescan_minutes,
    )
    entry.detail = {"kind": body.kind, "path": body.path}
    return _out(view)


@router.get(
    "/archives/{name}", summary="One archive and its counts", responses=problems.responses(404)
)
def get_archive(name: Name, state: StateDep, _who: Viewer) -> Archive:
    return _out(state.store.archives.require(name))


@router.delete(
    "/archives/{name}",
    summary="Remove an archive and its index entries; its files are not touched (admin)",
    responses=problems.responses(404),
)
def remove_archive(
    name: Name,
    state: StateDep,
    _entry: Annotated[AuditEntry, Audit("archive.remove", Role.ADMIN, "name")],
) -> ArchiveRemoved:
    state.store.archives.require(name)
    state.store.archives.remove(name)
    return ArchiveRemoved(name=name)


@router.post(
    "/archives/{name}/scan",
    status_code=202,
    summary="Queue a scan of the archive (operator); incremental unless full=true",
    responses=problems.responses(404, 503),
)
def scan_archive(
    name: Name,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("archive.scan", Role.OPERATOR, "name")],
    full: bool = False,
) -> JobAccepted:
    state.store.archives.require(name)
    request = wiring.scan_request(name, full=full, trigger="api")
    job_id, created = job_layer.submit(
        state.settings, request, store=state.store, client=state.job_client()
    )
    entry.outcome = "queued"
    entry.detail = {"job_id": job_id, "full": full}
    return JobAccepted(job_id=job_id, status="queued", created=created, queue=request.queue)


@router.get(
    "/archives/{name}/errors",
    summary="Files that could not be indexed, with the reason",
    responses=problems.responses(404),
)
def archive_errors(
    name: Name,
    state: StateDep,
    _who: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ProblemFile]:
    state.store.archives.require(name)
    return [ProblemFile(**row) for row in state.store.archives.problem_files(name, limit)]


@router.get(
    "/archives/{name}/identity-conflicts",
    summary="Instances whose patient identity disagrees with what the index holds",
    responses=problems.responses(404),
)
def identity_conflicts(
    name: Name,
    state: StateDep,
    _who: Viewer,
    status: Literal["open", "resolved"] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IdentityConflict]:
    state.store.archives.require(name)
    rows = state.store.archives.identity_conflicts(name, status, limit)
    return [IdentityConflict(**row) for row in rows]


@router.post(
    "/archives/{name}/identity-conflicts/{conflict_id}/resolve",
    summary="Close an identity conflict with what the review found (operator)",
    responses=problems.responses(404, 409),
)
def resolve_identity_conflict(
    name: Name,
    conflict_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ConflictResolution,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("archive.identity.resolve", Role.OPERATOR, "conflict_id")],
) -> IdentityConflict:
    state.store.archives.require(name)
    row = state.store.archives.resolve_conflict(name, conflict_id, entry.actor, body.resolution)
    entry.detail = {"archive": name}
    return IdentityConflict(**row)


@router.get(
    "/search/{level}",
    summary="Search every archive: DICOM matching keys as query parameters "
    "(PatientName=DOE^J*, StudyDate=20240101-20241231, ModalitiesInStudy=CT)",
    responses=problems.responses(400),
)
def search(
    level: Literal["study", "series", "instance"],
    request: Request,
    *,
    state: StateDep,
    _who: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    archive: Annotated[list[str] | None, Query()] = None,
) -> list[dict[str, Any]]:
    match = {k: v for k, v in request.query_params.items() if k not in _RESERVED}
    query = SearchQuery.build(level, match, archives=archive or [], limit=limit, offset=offset)
    return state.store.archive_search.search(query)


@router.get(
    "/archives/{name}/instances/{sop_uid}/file",
    summary="Download an indexed instance as a DICOM file",
    response_class=Response,
    responses={200: {"content": {"application/dicom": BINARY}}, **problems.responses(404, 503)},
)
def download(
    name: Name,
    sop_uid: Annotated[str, Path(pattern=r"^[0-9.]{1,64}$")],
    state: StateDep,
    _who: Viewer,
) -> Response:
    service = state.dicomweb()
    body = service.part10(service.locate(None, sop_uid=sop_uid, archive=name)[0])
    return Response(
        body,
        media_type="application/dicom",
        headers={"Content-Disposition": f'attachment; filename="{sop_uid}.dcm"'},
    )
