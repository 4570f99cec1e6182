"""``/dicomweb`` WADO-RS: instances, series and studies as
``multipart/related; type="application/dicom"``, and their metadata as DICOM JSON.
A legacy JPEG 2000 image is served as DICOM with its lossless codestream
encapsulated (1.2.840.10008.1.2.4.90), or decompressed when the client asks for
``transfer-syntax=1.2.840.10008.1.2.1``."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pacsync.api import problems
from pacsync.api.deps import StateDep, Viewer
from pacsync.api.dicomweb import BINARY, DICOM_JSON, JSON_LIST, UID
from pacsync.api.dicomweb import router as dicomweb_router
from pacsync.bootstrap.dicomweb import DicomWebService, Located
from pacsync.connectors.dicom.transcode import transcoded
from pacsync.errors import UnsupportedFeature

router = dicomweb_router()
_SYNTAX = re.compile(r'transfer-syntax\s*=\s*"?([0-9.*]+)"?')


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
    200: {"content": {DICOM_JSON: JSON_LIST}},
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
