"""``/dicomweb`` QIDO-RS: search studies, series and instances across every archive
(``application/dicom+json``; DICOM matching: wild cards, date ranges, UID lists,
``limit``/``offset``, ``includefield``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from pacsync.api import problems
from pacsync.api.deps import StateDep, Viewer
from pacsync.api.dicomweb import DICOM_JSON, JSON_LIST, UID
from pacsync.api.dicomweb import router as dicomweb_router
from pacsync.imaging import dicom_json
from pacsync.imaging.search import MAX_OFFSET, Level
from pacsync.imaging.search import Query as SearchQuery

router = dicomweb_router()
_RESERVED = {"limit", "offset", "includefield", "fuzzymatching", "archive"}


def _qido(
    request: Request,
    state: StateDep,
    level: Level,
    fixed: dict[str, str],
    *,
    limit: int,
    offset: int,
) -> JSONResponse:
    match = {k: v for k, v in request.query_params.items() if k not in _RESERVED}
    # includefield is accepted and needs nothing more: every result carries every
    # attribute the index holds at its level (PS3.18 lets a server leave out those it lacks)
    archives = request.query_params.getlist("archive")
    query = SearchQuery.build(
        level, {**match, **fixed}, archives=archives, limit=limit, offset=offset
    )
    path = str(request.url.remove_query_params(list(request.query_params)))
    base = path[: path.index("/dicomweb") + len("/dicomweb")]
    rows = state.store.archive_search.search(query)
    return JSONResponse([dicom_json.result(r, level, base) for r in rows], media_type=DICOM_JSON)


Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
_QIDO: dict[int | str, dict[str, Any]] = {
    200: {"content": {DICOM_JSON: JSON_LIST}},
    **problems.responses(400),
}


@router.get("/studies", summary="QIDO-RS: search studies", responses=_QIDO)
def search_studies(
    request: Request, state: StateDep, _who: Viewer, limit: Limit = 100, offset: Offset = 0
) -> JSONResponse:
    return _qido(request, state, "study", {}, limit=limit, offset=offset)


@router.get("/series", summary="QIDO-RS: search series", responses=_QIDO)
def search_all_series(
    request: Request, state: StateDep, _who: Viewer, limit: Limit = 100, offset: Offset = 0
) -> JSONResponse:
    return _qido(request, state, "series", {}, limit=limit, offset=offset)


@router.get("/instances", summary="QIDO-RS: search instances", responses=_QIDO)
def search_all_instances(
    request: Request, state: StateDep, _who: Viewer, limit: Limit = 100, offset: Offset = 0
) -> JSONResponse:
    return _qido(request, state, "instance", {}, limit=limit, offset=offset)


@router.get("/studies/{study}/series", summary="QIDO-RS: series of a study", responses=_QIDO)
def search_series(
    study: UID,
    request: Request,
    *,
    state: StateDep,
    _who: Viewer,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSONResponse:
    return _qido(request, state, "series", {"StudyInstanceUID": study}, limit=limit, offset=offset)


@router.get(
    "/studies/{study}/instances",
    summary="QIDO-RS: instances of a study",
    responses=_QIDO,
)
def search_study_instances(
    study: UID,
    request: Request,
    *,
    state: StateDep,
    _who: Viewer,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> JSONResponse:
    return _qido(
        request, state, "instance", {"StudyInstanceUID": study}, limit=limit, offset=offset
    )


@router.get(
    "/studies/{study}/series/{series}/instances",
    summary="QIDO-RS: instances of a series",
    responses=_QIDO,
)
def search_instances(
    study: UID,
    series: UID,
    request: Request,
    *,
    state: StateDep,
    _who: Viewer,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> JSONResponse:
    fixed = {"StudyInstanceUID": study, "SeriesInstanceUID": series}
    return _qido(request, state, "instance", fixed, limit=limit, offset=offset)
