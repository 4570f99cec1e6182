"""``/dicomweb`` rendered frames and thumbnails (PNG or JPEG; ``viewport=w,h``,
``window=center,width,linear``, thumbnails ``size=small|medium|large``), cached on
disk by the rendering cache."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response

from pacsync.api import problems
from pacsync.api.deps import StateDep, Viewer
from pacsync.api.dicomweb import BINARY, UID
from pacsync.api.dicomweb import router as dicomweb_router
from pacsync.bootstrap.dicomweb import DicomWebService, Located
from pacsync.connectors.dicom.render import THUMBNAIL_SIZES
from pacsync.errors import InvalidRequest, UnsupportedFeature
from pacsync.imaging.rendering import parse_viewport, parse_window

router = dicomweb_router()
_IMAGE_TYPES = ("image/png", "image/jpeg")


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
