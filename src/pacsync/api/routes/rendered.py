"""``/dicomweb`` rendered frames and thumbnails (PNG or JPEG; ``viewport=w,h``,
``window=center,width,linear``, ``quality=1..100`` for JPEG, thumbnails
``size=small|medium|large``), cached on disk by the rendering cache.

The ``accept`` query parameter (``?accept=image/jpeg``, what OHIF sends) wins over the
Accept header (PS3.18 8.3.3.1).  A study or series rendered is one part per instance
(its first frame), ``frames/1,2/rendered`` one part per frame; a thumbnail is always
one image: the middle instance of a study or series, the first or given frame."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response

from pacsync.api import problems
from pacsync.api.deps import StateDep
from pacsync.api.dicomweb import BINARY, UID, not_acceptable
from pacsync.api.dicomweb import router as dicomweb_router
from pacsync.api.dicomweb_access import WebViewer
from pacsync.api.routes.frames import FrameList, frame_numbers, multipart
from pacsync.bootstrap.dicomweb import DicomWebService, Located
from pacsync.connectors.dicom.frames import NotAcceptable
from pacsync.connectors.dicom.render import THUMBNAIL_SIZES
from pacsync.errors import InvalidRequest
from pacsync.imaging.rendering import parse_viewport, parse_window

router = dicomweb_router()
_IMAGE_TYPES = ("image/png", "image/jpeg")
MAX_RENDERED_PARTS = 500


def _image_type(request: Request) -> str:
    accept = request.query_params.get("accept") or request.headers.get("accept") or "image/png"
    for media in _IMAGE_TYPES:
        if media in accept:
            return media
    if "*/*" in accept or "image/*" in accept or "multipart/related" in accept:
        return "image/png"
    raise not_acceptable(
        NotAcceptable(f"cannot render as {accept!r}", hint="Accept image/png or image/jpeg.")
    )


def _quality(request: Request) -> int:
    text = request.query_params.get("quality")
    if text is None or not text.strip():
        return 90
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 100:
        raise InvalidRequest(f"quality {text!r} is not 1 to 100", hint="Give quality=1..100.")
    return int(text)


def _image(
    request: Request,
    service: DicomWebService,
    located: Located,
    *,
    frame: int,
    size: int | None,
) -> Response:
    media, body = _rendering(request, service, located, frame=frame, size=size)
    return Response(body, media_type=media, headers={"Cache-Control": "private, max-age=3600"})


def _rendering(
    request: Request, service: DicomWebService, located: Located, *, frame: int, size: int | None
) -> tuple[str, bytes]:
    media = _image_type(request)
    window = parse_window(request.query_params.get("window"))
    body = service.rendered(located, frame=frame, size=size, media_type=media, window=window,
                            quality=_quality(request))  # fmt: skip
    return media, body


def _rendered_parts(
    request: Request, service: DicomWebService, found: list[tuple[Located, int]]
) -> Response:
    if len(found) > MAX_RENDERED_PARTS:
        raise InvalidRequest(
            f"{len(found)} images are more than {MAX_RENDERED_PARTS} rendered at once",
            hint="Ask for a series or instances one by one.",
        )
    size = parse_viewport(request.query_params.get("viewport"))
    parts = [_rendering(request, service, located, frame=frame, size=size)
             for located, frame in found]  # fmt: skip
    return multipart(parts, parts[0][0])


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
    study: UID, series: UID, instance: UID, request: Request, *, state: StateDep, _who: WebViewer
) -> Response:
    service = state.dicomweb()
    located = service.locate(study, series, instance)[0]
    size = parse_viewport(request.query_params.get("viewport"))
    return _image(request, service, located, frame=1, size=size)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered",
    summary="WADO-RS: a frame rendered (frames/1,2: one part each)",
    response_class=Response,
    responses=_IMAGE,
)
def rendered_frame(
    study: UID,
    series: UID,
    instance: UID,
    frames: FrameList,
    request: Request,
    *,
    state: StateDep,
    _who: WebViewer,
) -> Response:
    numbers = frame_numbers(frames)
    service = state.dicomweb()
    located = service.locate(study, series, instance)[0]
    if len(numbers) > 1:
        return _rendered_parts(request, service, [(located, n) for n in numbers])
    size = parse_viewport(request.query_params.get("viewport"))
    return _image(request, service, located, frame=numbers[0], size=size)


@router.get(
    "/studies/{study}/rendered",
    summary="WADO-RS: a study rendered, one part per instance (its first frame)",
    response_class=Response,
    responses=_IMAGE,
)
def rendered_study(study: UID, request: Request, state: StateDep, _who: WebViewer) -> Response:
    service = state.dicomweb()
    return _rendered_parts(request, service, [(x, 1) for x in service.locate(study)])


@router.get(
    "/studies/{study}/series/{series}/rendered",
    summary="WADO-RS: a series rendered, one part per instance (its first frame)",
    response_class=Response,
    responses=_IMAGE,
)
def rendered_series(
    study: UID, series: UID, request: Request, state: StateDep, _who: WebViewer
) -> Response:
    service = state.dicomweb()
    return _rendered_parts(request, service, [(x, 1) for x in service.locate(study, series)])


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
def study_thumbnail(study: UID, request: Request, state: StateDep, _who: WebViewer) -> Response:
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
    study: UID, series: UID, request: Request, state: StateDep, _who: WebViewer
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
    study: UID, series: UID, instance: UID, request: Request, *, state: StateDep, _who: WebViewer
) -> Response:
    service = state.dicomweb()
    located = service.locate(study, series, instance)[0]
    return _image(request, service, located, frame=1, size=_thumbnail_size(request))


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/thumbnail",
    summary="A frame's thumbnail",
    response_class=Response,
    responses=_IMAGE,
)
def frame_thumbnail(
    study: UID,
    series: UID,
    instance: UID,
    frame: Annotated[int, Path(ge=1, le=100_000)],
    request: Request,
    *,
    state: StateDep,
    _who: WebViewer,
) -> Response:
    service = state.dicomweb()
    located = service.locate(study, series, instance)[0]
    return _image(request, service, located, frame=frame, size=_thumbnail_size(request))
