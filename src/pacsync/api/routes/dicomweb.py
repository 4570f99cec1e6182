"""``/dicomweb``: DICOMweb over every archive (PS3.18).

QIDO-RS searches studies, series and instances (``application/dicom+json``); WADO-RS
retrieves instances, series and studies (``multipart/related; type="application/dicom"``),
their metadata as DICOM JSON, and rendered frames and thumbnails (PNG or JPEG).
A legacy JPEG 2000 image is served as DICOM with its lossless codestream
encapsulated (1.2.840.10008.1.2.4.90), or decompressed when the client asks for
``transfer-syntax=1.2.840.10008.1.2.1``."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, StateDep, Viewer
from pacsync.bootstrap.dicomweb import DicomWebService, Located
from pacsync.connectors.dicom.render import THUMBNAIL_SIZES
from pacsync.connectors.dicom.transcode import transcoded
from pacsync.errors import InvalidRequest, UnsupportedFeature
from pacsync.imaging import dicom_json
from pacsync.imaging.rendering import parse_viewport, parse_window
from pacsync.imaging.search import MAX_OFFSET, Level
from pacsync.imaging.search import Query as SearchQuery

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"], responses=AUTHENTICATED)
DICOM_JSON = "application/dicom+json"
UID = Annotated[str, Path(pattern=r"^[0-9.]{1,64}$")]
BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
_JSON_LIST: dict[str, Any] = {"schema": {"type": "array", "items": {"type": "object"}}}
_RESERVED = {"limit", "offset", "includefield", "fuzzymatching", "archive"}
_IMAGE_TYPES = ("image/png", "image/jpeg")
_SYNTAX = re.compile(r'transfer-syntax\s*=\s*"?([0-9.*]+)"?')


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
    for keyword in request.query_params.getlist("includefield"):
        if keyword != "all":
            for item in keyword.split(","):
                SearchQuery.build(level, {item.strip(): "*"})  # an unknown key is refused
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
    200: {"content": {DICOM_JSON: _JSON_LIST}},
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


# -- WADO-RS ------------------------------------------------------------------------------------


def _wanted_syntax(request: Request) -> str | None:
    """The transfer syntax the Accept header asks for; None: as stored."""
    accept = request.headers.get("accept", "")
    if accept and "application/dicom" not in accept and "*/*" not in accept:
        raise UnsupportedFeature(
            f"cannot answer with {accept!r}",
            hint='Accept multipart/related; type="application/dicom" (optionally with '
            "transfer-syntax=*).",
        )
    found = _SYNTAX.search(accept)
    return None if found is None or found.group(1) == "*" else found.group(1)


def _multipart(service: DicomWebService, found: list[Located], syntax: str | None) -> Response:
    boundary = secrets.token_hex(16)

    def body(located: Located) -> bytes:
        data = service.part10(located)
        return data if syntax is None else transcoded(data, syntax)

    first = body(found[0])  # a missing first file fails before the 200 is sent

    def parts() -> Iterator[bytes]:
        for index, located in enumerate(found):
            data = first if index == 0 else body(located)
            yield (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            yield data
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    media = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return StreamingResponse(parts(), media_type=media)


_WADO: dict[int | str, dict[str, Any]] = {
    200: {"content": {"multipart/related": BINARY}},
    **problems.responses(404, 503),
}


@router.get(
    "/studies/{study}",
    summary="WADO-RS: a study's instances",
    response_class=Response,
    responses=_WADO,
)
def retrieve_study(study: UID, request: Request, state: StateDep, _who: Viewer) -> Response:
    service = state.dicomweb()
    return _multipart(service, service.locate(study), _wanted_syntax(request))


@router.get(
    "/studies/{study}/series/{series}",
    summary="WADO-RS: a series' instances",
    response_class=Response,
    responses=_WADO,
)
def retrieve_series(
    study: UID, series: UID, request: Request, state: StateDep, _who: Viewer
) -> Response:
    service = state.dicomweb()
    return _multipart(service, service.locate(study, series), _wanted_syntax(request))


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}",
    summary="WADO-RS: one instance",
    response_class=Response,
    responses=_WADO,
)
def retrieve_instance(
    study: UID, series: UID, instance: UID, request: Request, *, state: StateDep, _who: Viewer
) -> Response:
    service = state.dicomweb()
    return _multipart(service, service.locate(study, series, instance), _wanted_syntax(request))


def _metadata(service: DicomWebService, found: list[Located]) -> JSONResponse:
    return JSONResponse([service.metadata(x) for x in found], media_type=DICOM_JSON)


_META: dict[int | str, dict[str, Any]] = {
    200: {"content": {DICOM_JSON: _JSON_LIST}},
    **problems.responses(404, 503),
}


@router.get("/studies/{study}/metadata", summary="WADO-RS: study metadata", responses=_META)
def study_metadata(study: UID, state: StateDep, _who: Viewer) -> JSONResponse:
    service = state.dicomweb()
    return _metadata(service, service.locate(study))


@router.get(
    "/studies/{study}/series/{series}/metadata",
    summary="WADO-RS: series metadata",
    responses=_META,
)
def series_metadata(study: UID, series: UID, state: StateDep, _who: Viewer) -> JSONResponse:
    service = state.dicomweb()
    return _metadata(service, service.locate(study, series))


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/metadata",
    summary="WADO-RS: instance metadata",
    responses=_META,
)
def instance_metadata(
    study: UID, series: UID, instance: UID, state: StateDep, _who: Viewer
) -> JSONResponse:
    service = state.dicomweb()
    return _metadata(service, service.locate(study, series, instance))


def _image_type(request: Request) -> str:
    accept = request.headers.get("accept", "image/png")
    for media in _IMAGE_TYPES:
        if media in accept:
            return media
    if "*/*" in accept or "image/*" in accept:
        return "image/png"
    raise UnsupportedFeature(f"cannot render as {accept!r}", hint="Accept image/png or image/jpeg.")


def _image(
    request: Request,
    service: DicomWebService,
    located: Located,
    *,
    frame: int,
    size: int | None,
) -> Response:
    media = _image_type(request)
    window = parse_window(request.query_params.get("window"))
    body = service.rendered(located, frame=frame, size=size, media_type=media, window=window)
    return Response(body, media_type=media, headers={"Cache-Control": "private, max-age=3600"})


_IMAGE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": BINARY, "image/jpeg": BINARY}},
    **problems.responses(400, 404, 503),
}


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/rendered",
    summary="WADO-RS: an instance rendered (first frame); viewport=w,h window=c,w,linear",
    response_class=Response,
    responses=_IMAGE,
)
def rendered_instance(
    study: UID, series: UID, instance: UID, request: Request, *, state: StateDep, _who: Viewer
) -> Response:
    service = state.dicomweb()
    located = service.locate(study, series, instance)[0]
    size = parse_viewport(request.query_params.get("viewport"))
    return _image(request, service, located, frame=1, size=size)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered",
    summary="WADO-RS: one frame rendered",
    response_class=Response,
    responses=_IMAGE,
)
def rendered_frame(
    study: UID,
    series: UID,
    instance: UID,
    frame: Annotated[int, Path(ge=1, le=100_000)],
    request: Request,
    *,
    state: StateDep,
    _who: Viewer,
) -> Response:
    service = state.dicomweb()
    located = service.locate(study, series, instance)[0]
    size = parse_viewport(request.query_params.get("viewport"))
    return _image(request, service, located, frame=frame, size=size)


def _thumbnail_size(request: Request) -> int:
    named = request.query_params.get("size", "medium")
    viewport = parse_viewport(request.query_params.get("viewport"))
    if viewport is not None:
        return viewport
    if named not in THUMBNAIL_SIZES:
        raise InvalidRequest(
            f"unknown thumbnail size {named!r}",
            hint="Use size=" + ", ".join(THUMBNAIL_SIZES) + " or viewport=w,h.",
        )
    return THUMBNAIL_SIZES[named]


def _middle(found: list[Located]) -> Located:
    """The instance a study's or series' thumbnail shows: the middle one."""
    return found[len(found) // 2]


@router.get(
    "/studies/{study}/thumbnail",
    summary="A study's thumbnail",
    response_class=Response,
    responses=_IMAGE,
)
def study_thumbnail(study: UID, request: Request, state: StateDep, _who: Viewer) -> Response:
    service = state.dicomweb()
    located = _middle(service.locate(study))
    return _image(request, service, located, frame=1, size=_thumbnail_size(request))


@router.get(
    "/studies/{study}/series/{series}/thumbnail",
    summary="A series' thumbnail",
    response_class=Response,
    responses=_IMAGE,
)
def series_thumbnail(
    study: UID, series: UID, request: Request, state: StateDep, _who: Viewer
) -> Response:
    service = state.dicomweb()
    located = _middle(service.locate(study, series))
    return _image(request, service, located, frame=1, size=_thumbnail_size(request))


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/thumbnail",
    summary="An instance's thumbnail (size=small|medium|large)",
    response_class=Response,
    responses=_IMAGE,
)
def instance_thumbnail(
    study: UID, series: UID, instance: UID, request: Request, *, state: StateDep, _who: Viewer
) -> Response:
    service = state.dicomweb()
    located = service.locate(study, series, instance)[0]
    return _image(request, service, located, frame=1, size=_thumbnail_size(request))
