"""``/dicomweb`` WADO-RS: instances, series and studies as
``multipart/related; type="application/dicom"``, and their metadata as DICOM JSON with
bulk data as BulkDataURIs.  A legacy JPEG 2000 image is served as DICOM with its
lossless codestream encapsulated (1.2.840.10008.1.2.4.90), or decompressed when the
client asks for ``transfer-syntax=1.2.840.10008.1.2.1``.

Files are streamed in 1 MiB chunks, never read whole; one instance asked for as plain
``application/dicom`` is sent as a file, with HTTP ranges (a large instance resumes)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from pacsync.api import problems
from pacsync.api.deps import StateDep
from pacsync.api.dicomweb import (
    BINARY,
    DICOM_JSON,
    JSON_LIST,
    UID,
    base_url,
    media_ranges,
    not_acceptable,
)
from pacsync.api.dicomweb import router as dicomweb_router
from pacsync.api.dicomweb_access import WebViewer
from pacsync.bootstrap.dicomweb import DicomWebService, Located
from pacsync.connectors.dicom.frames import EXPLICIT_LITTLE, IMPLICIT_LITTLE, NotAcceptable
from pacsync.connectors.dicom.transcode import transcoded

router = dicomweb_router()
_SYNTAX = re.compile(r'transfer-syntax\s*=\s*"?([0-9.*]+)"?')
CHUNK = 1 << 20
DICOM = "application/dicom"
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
UNCOMPRESSED = (EXPLICIT_LITTLE, IMPLICIT_LITTLE)


def _wanted_syntax(request: Request) -> str | None:
    """The transfer syntax the Accept header asks for; None: as stored."""
    accept = request.headers.get("accept", "")
    if accept and DICOM not in accept and "*/*" not in accept:
        raise not_acceptable(
            NotAcceptable(
                f"cannot answer with {accept!r}",
                hint='Accept multipart/related; type="application/dicom" (optionally with '
                "transfer-syntax=*).",
            )
        )
    found = _SYNTAX.search(accept)
    return None if found is None or found.group(1) == "*" else found.group(1)


def _single_part(request: Request) -> bool:
    """Whether the client asked for plain ``application/dicom`` (one instance, no
    multipart), without another transfer syntax."""
    ranges = media_ranges(request.headers.get("accept"))
    return bool(ranges) and all(
        media == DICOM and params.get("transfer-syntax", "*") == "*" for media, params in ranges
    )


def _stored(located: Located) -> str | None:
    """The transfer syntax an instance is sent in as stored (a legacy image: encapsulated
    JPEG 2000)."""
    if located.kind != "dicom":
        return JPEG2000_LOSSLESS
    return located.header.transfer_syntax_uid


def _as_stored(located: Located, syntax: str | None) -> bool:
    return syntax is None or syntax == _stored(located)


def _chunks(service: DicomWebService, located: Located, syntax: str | None) -> Iterator[bytes]:
    if _as_stored(located, syntax) and located.kind == "dicom":
        service.source(located)  # the errors of a missing file, before reading
        with open(located.file, "rb") as file:
            while chunk := file.read(CHUNK):
                yield chunk
        return
    data = service.part10(located)
    yield data if syntax is None or _as_stored(located, syntax) else transcoded(data, syntax)


def _check_syntax(found: list[Located], syntax: str | None) -> None:
    """406 before anything is sent when an instance can be neither sent as stored nor
    decoded to the syntax asked for (pacsync encodes nothing)."""
    if syntax is None or syntax in UNCOMPRESSED:
        return
    other = next((x for x in found if not _as_stored(x, syntax)), None)
    if other is not None:
        raise not_acceptable(
            NotAcceptable(
                f"{other.header.sop_instance_uid} is stored as {_stored(other)}, "
                f"not {syntax}, and pacsync does not encode",
                hint="Ask for transfer-syntax=* (as stored) or "
                f"transfer-syntax={EXPLICIT_LITTLE} (decoded).",
            )
        )


def _multipart(service: DicomWebService, found: list[Located], syntax: str | None) -> Response:
    boundary = secrets.token_hex(16)
    _check_syntax(found, syntax)
    first = None if _as_stored(found[0], syntax) else list(_chunks(service, found[0], syntax))
    if first is None:
        service.source(found[0])  # a missing first file fails before the 200 is sent

    def parts() -> Iterator[bytes]:
        for index, located in enumerate(found):
            syntax_of = _stored(located) if _as_stored(located, syntax) else syntax
            media = f"{DICOM}; transfer-syntax={syntax_of}" if syntax_of else DICOM
            yield f"--{boundary}\r\nContent-Type: {media}\r\n\r\n".encode()
            yield from (first if index == 0 and first is not None else
                        _chunks(service, located, syntax))  # fmt: skip
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    media = f'multipart/related; type="{DICOM}"; boundary={boundary}'
    return StreamingResponse(parts(), media_type=media)


_WADO: dict[int | str, dict[str, Any]] = {
    200: {"content": {"multipart/related": BINARY, DICOM: BINARY}},
    **problems.responses(404, 406, 503),
}


@router.get(
    "/studies/{study}",
    summary="WADO-RS: a study's instances",
    response_class=Response,
    responses=_WADO,
)
def retrieve_study(study: UID, request: Request, state: StateDep, _who: WebViewer) -> Response:
    service = state.dicomweb()
    return _multipart(service, service.locate(study), _wanted_syntax(request))


@router.get(
    "/studies/{study}/series/{series}",
    summary="WADO-RS: a series' instances",
    response_class=Response,
    responses=_WADO,
)
def retrieve_series(
    study: UID, series: UID, request: Request, state: StateDep, _who: WebViewer
) -> Response:
    service = state.dicomweb()
    return _multipart(service, service.locate(study, series), _wanted_syntax(request))


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}",
    summary="WADO-RS: one instance (Accept application/dicom: the file itself, with ranges)",
    response_class=Response,
    responses=_WADO,
)
def retrieve_instance(
    study: UID, series: UID, instance: UID, request: Request, *, state: StateDep, _who: WebViewer
) -> Response:
    service = state.dicomweb()
    found = service.locate(study, series, instance)
    if _single_part(request) and found[0].kind == "dicom":
        service.source(found[0])  # 404 or 503 when the file is gone
        return FileResponse(found[0].file, media_type=DICOM)
    if _single_part(request):
        return Response(service.part10(found[0]), media_type=DICOM)
    return _multipart(service, found, _wanted_syntax(request))


def _metadata(request: Request, service: DicomWebService, found: list[Located]) -> Response:
    base = base_url(request)

    def url(x: Located) -> str:
        h = x.header
        return (f"{base}/studies/{h.study_instance_uid}/series/{h.series_instance_uid}"
                f"/instances/{h.sop_instance_uid}")  # fmt: skip

    body = b"[" + b",".join(service.metadata_json(x, url(x)) for x in found) + b"]"
    return Response(body, media_type=DICOM_JSON)


_META: dict[int | str, dict[str, Any]] = {
    200: {"content": {DICOM_JSON: JSON_LIST}},
    **problems.responses(404, 503),
}


@router.get("/studies/{study}/metadata", summary="WADO-RS: study metadata", responses=_META)
def study_metadata(study: UID, request: Request, state: StateDep, _who: WebViewer) -> Response:
    service = state.dicomweb()
    return _metadata(request, service, service.locate(study))


@router.get(
    "/studies/{study}/series/{series}/metadata",
    summary="WADO-RS: series metadata",
    responses=_META,
)
def series_metadata(
    study: UID, series: UID, request: Request, state: StateDep, _who: WebViewer
) -> Response:
    service = state.dicomweb()
    return _metadata(request, service, service.locate(study, series))


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/metadata",
    summary="WADO-RS: instance metadata",
    responses=_META,
)
def instance_metadata(
    study: UID, series: UID, instance: UID, request: Request, *, state: StateDep, _who: WebViewer
) -> Response:
    service = state.dicomweb()
    return _metadata(request, service, service.locate(study, series, instance))
