"""``/dicomweb`` QIDO-RS: search studies, series and instances across every archive
(``application/dicom+json``; DICOM matching: wild cards, date ranges, UID lists,
``limit``/``offset``, ``includefield``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from pacsync.api import problems
from pacsync.api.deps import StateDep
from pacsync.api.dicomweb import DICOM_JSON, JSON_LIST, UID
from pacsync.api.dicomweb import router as dicomweb_router
from pacsync.api.dicomweb_access import WebAccess, WebViewer
from pacsync.imaging import dicom_json
from pacsync.imaging.search import MAX_OFFSET, Level, keyword_of
from pacsync.imaging.search import Query as SearchQuery

router = dicomweb_router()
# includefield is accepted and needs nothing more: every result carries every attribute
# the index holds at its level (PS3.18 lets a server leave out those it lacks); "token"
# is a viewer link's (see dicomweb_access)
_RESERVED = {"limit", "offset", "includefield", "fuzzymatching", "archive", "token"}
_NAMES = {"PatientName", "ReferringPhysicianName"}
_WILD = set("*?")


def _matching(request: Request, level: Level) -> dict[str, str]:
    """The matching keys of the query string by keyword (a key given twice: the last).
    With ``fuzzymatching=true`` a name without wild cards matches where it appears in
    the name (names always match without case or accents)."""
    fuzzy = request.query_params.get("fuzzymatching", "").lower() == "true"
    match: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in _RESERVED:
            continue
        keyword = keyword_of(key, level)
        fuzzy_name = fuzzy and keyword in _NAMES and value and not _WILD & set(value)
        match[keyword] = f"*{value}*" if fuzzy_name else value
    return match


def _scoped(match: dict[str, str], access: WebAccess) -> dict[str, str] | None:
    """``match`` narrowed to the study of a viewer link; None when it asks for others."""
    if access.study is None:
        return match
    asked = match.get("StudyInstanceUID")
    if asked and asked != "*" and access.study not in asked.split("\\"):
        return None
    return {**match, "StudyInstanceUID": access.study}


def _qido(
    request: Request,
    state: StateDep,
    level: Level,
    fixed: dict[str, str],
    *,
    access: WebAccess,
    limit: int,
    offset: int,
) -> JSONResponse:
    match = _scoped({**_matching(request, level), **fixed}, access)
    if match is None:
        return JSONResponse([], media_type=DICOM_JSON)
    archives = request.query_params.getlist("archive")
    query = SearchQuery.build(level, match, archives=archives, limit=limit, offset=offset)
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
    request: Request, state: StateDep, access: WebViewer, limit: Limit = 100, offset: Offset = 0
) -> JSONResponse:
    return _qido(request, state, "study", {}, access=access, limit=limit, offset=offset)


@router.get("/series", summary="QIDO-RS: search series", responses=_QIDO)
def search_all_series(
    request: Request, state: StateDep, access: WebViewer, limit: Limit = 100, offset: Offset = 0
) -> JSONResponse:
    return _qido(request, state, "series", {}, access=access, limit=limit, offset=offset)


@router.get("/instances", summary="QIDO-RS: search instances", responses=_QIDO)
def search_all_instances(
    request: Request, state: StateDep, access: WebViewer, limit: Limit = 100, offset: Offset = 0
) -> JSONResponse:
    return _qido(request, state, "instance", {}, access=access, limit=limit, offset=offset)


@router.get("/studies/{study}/series", summary="QIDO-RS: series of a study", responses=_QIDO)
def search_series(
    study: UID,
    request: Request,
    *,
    state: StateDep,
    access: WebViewer,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSONResponse:
    fixed = {"StudyInstanceUID": study}
    return _qido(request, state, "series", fixed, access=access, limit=limit, offset=offset)


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
    access: WebViewer,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> JSONResponse:
    fixed = {"StudyInstanceUID": study}
    return _qido(request, state, "instance", fixed, access=access, limit=limit, offset=offset)


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
    access: WebViewer,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> JSONResponse:
    fixed = {"StudyInstanceUID": study, "SeriesInstanceUID": series}
    return _qido(request, state, "instance", fixed, access=access, limit=limit, offset=offset)
