"""``/dicomweb`` WADO-RS frames and bulk data (PS3.18 10.4.1.1.3 and .1.5).

``…/instances/{i}/frames/1`` or ``frames/1,3,5`` answers one part per frame, in the
order asked, each headed ``Content-Type: application/octet-stream;
transfer-syntax=<UID>`` naming what that part holds (viewers read it to pick their
decoder; without it they assume Implicit VR Little Endian).  With
``transfer-syntax=*`` (what OHIF sends) the frames go out as stored; see
:mod:`pacsync.connectors.dicom.frames` for the rest.  ``…/bulk/{tag}`` serves the
BulkDataURIs of the metadata (the pixel data: every frame)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response

from pacsync.api import problems
from pacsync.api.deps import StateDep
from pacsync.api.dicomweb import BINARY, OCTET_STREAM, UID, frame_choices, not_acceptable
from pacsync.api.dicomweb import router as dicomweb_router
from pacsync.api.dicomweb_access import WebViewer
from pacsync.bootstrap.dicomweb import PIXEL_DATA
from pacsync.connectors.dicom.frames import Frames, NotAcceptable
from pacsync.errors import InvalidRequest

router = dicomweb_router()
MAX_FRAMES = 100_000
FrameList = Annotated[str, Path(pattern=r"^[0-9]{1,6}(,[0-9]{1,6}){0,999}$")]
Tag = Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{8}$")]


def frame_numbers(text: str) -> list[int]:
    numbers = [int(part) for part in text.split(",")]
    if any(not 1 <= n <= MAX_FRAMES for n in numbers):
        raise InvalidRequest(f"frame numbers {text!r} must count from 1",
                             hint="Ask for frames/1 or frames/1,2,3.")  # fmt: skip
    return numbers


def multipart(parts: list[tuple[str, bytes]], type_: str) -> Response:
    """A ``multipart/related`` answer of (media type, body) parts; status 200."""
    boundary = secrets.token_hex(16)
    chunks: list[bytes] = []
    for media, body in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {media}\r\n\r\n".encode(), body, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    media_type = f'multipart/related; type="{type_}"; boundary={boundary}'
    return Response(b"".join(chunks), status_code=200, media_type=media_type)


def _frames_response(found: Frames) -> Response:
    media = f"{found.media_type}; transfer-syntax={found.transfer_syntax}"
    return multipart([(media, frame) for frame in found.frames], found.media_type)


_FRAMES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"multipart/related": BINARY}},
    **problems.responses(404, 406, 503),
}


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
    summary="WADO-RS: frames of an instance (frames/1 or frames/1,2,3), as stored when accepted",
    response_class=Response,
    responses=_FRAMES,
)
def retrieve_frames(
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
    choices = frame_choices(request.headers.get("accept"))
    service = state.dicomweb()
    located = service.locate(study, series, instance)[0]
    try:
        return _frames_response(service.frames(located, numbers, choices))
    except NotAcceptable as error:
        raise not_acceptable(error) from None


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/bulk/{tag}",
    summary="WADO-RS: one bulk data element of an instance (its metadata's BulkDataURI)",
    response_class=Response,
    responses=_FRAMES,
)
def retrieve_bulk(
    study: UID,
    series: UID,
    instance: UID,
    tag: Tag,
    request: Request,
    *,
    state: StateDep,
    _who: WebViewer,
) -> Response:
    service = state.dicomweb()
    located = service.locate(study, series, instance)[0]
    if tag.upper() == PIXEL_DATA:
        count = max(located.header.number_of_frames or 1, 1)
        choices = frame_choices(request.headers.get("accept"))
        try:
            found = service.frames(located, list(range(1, count + 1)), choices)
        except NotAcceptable as error:
            raise not_acceptable(error) from None
        return _frames_response(found)
    _vr, value = service.bulk(located, tag.upper())
    return multipart([(OCTET_STREAM, value)], OCTET_STREAM)
