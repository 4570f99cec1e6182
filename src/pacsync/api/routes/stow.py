"""``/dicomweb`` STOW-RS (PS3.18 10.5): ``POST /studies`` (or ``/studies/{study}``, each
instance of that study) with ``multipart/related; type="application/dicom"``, one Part
10 instance a part, stored into the managed ``inbox`` archive and indexed before the
answer, as the DICOM SCP stores (operators and admins; ``PACSYNC_DICOMWEB_STOW=false``
turns it off).

The body is spooled to a temporary file as it arrives (up to
:data:`MAX_STOW_BYTES`), then split.  The answer is the STOW-RS response module in
DICOM JSON: ``ReferencedSOPSequence`` with each stored instance and its RetrieveURL,
``FailedSOPSequence`` with each refused one and its FailureReason (a DIMSE status:
0xC000 not readable, 0xA900 not of the study or not what it says, 0xA700 out of
resources, 0x0110 processing failure); 200 when all were stored, 202 when some were,
409 when none was."""

from __future__ import annotations

import mmap
import re
import tempfile
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from pacsync.api import problems
from pacsync.api.deps import Audit, AuditEntry, StateDep
from pacsync.api.dicomweb import DICOM_JSON, UID, base_url
from pacsync.api.dicomweb import router as dicomweb_router
from pacsync.api.problems import ProblemException
from pacsync.bootstrap import stow
from pacsync.domain.access import Role
from pacsync.errors import InvalidRequest, UnsupportedFeature

router = dicomweb_router()
_UPLOAD = re.compile(r"^/api/v1/dicomweb/studies(/[0-9.]{1,64})?$")
MAX_STOW_BYTES = 2 << 30  # one request; larger studies are sent in several
_STATUS = {"all": 200, "some": 202, "none": 409}


def is_upload(scope: Scope) -> bool:
    """A STOW-RS request: the API's 1 MiB body limit is not its (see MAX_STOW_BYTES)."""
    return scope.get("method") == "POST" and bool(_UPLOAD.match(scope.get("path", "")))


def _boundary(content_type: str) -> bytes:
    media, _, rest = content_type.partition(";")
    params = {}
    for part in rest.split(";"):
        name, _, value = part.strip().partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    inner = params.get("type", "application/dicom").lower()
    if media.strip().lower() != "multipart/related" or inner != "application/dicom":
        raise ProblemException(
            415,
            UnsupportedFeature(
                f"cannot store {content_type!r}",
                hint='Send Content-Type: multipart/related; type="application/dicom"; '
                "boundary=…, one DICOM Part 10 instance a part.",
            ),
        )
    if not params.get("boundary"):
        raise InvalidRequest("the multipart body names no boundary",
                             hint="Give boundary=… in Content-Type.")  # fmt: skip
    return params["boundary"].encode("latin-1")


def _parts(body: mmap.mmap | bytes, boundary: bytes) -> Iterator[bytes]:
    """The bodies of the parts of a multipart body (their headers dropped)."""
    delimiter = b"--" + boundary
    start = body.find(delimiter)
    while start != -1:
        start += len(delimiter)
        if body[start : start + 2] == b"--":
            return
        headers_end = body.find(b"\r\n\r\n", start)
        if headers_end == -1:
            return
        end = body.find(b"\r\n" + delimiter, headers_end + 4)
        if end == -1:
            raise InvalidRequest("the multipart body has no closing boundary",
                                 hint="End the body with --boundary--.")  # fmt: skip
        yield bytes(body[headers_end + 4 : end])
        start = end + 2


def _sequence_item(outcome: stow.StowOutcome, base: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "00081150": {"vr": "UI", "Value": [outcome.sop_class_uid]} if outcome.sop_class_uid
        else {"vr": "UI"},
        "00081155": {"vr": "UI", "Value": [outcome.sop_instance_uid]}
        if outcome.sop_instance_uid else {"vr": "UI"},
    }  # fmt: skip
    if outcome.failure is not None:
        item["00081197"] = {"vr": "US", "Value": [int(outcome.failure)]}
    else:
        item["00081190"] = {"vr": "UR", "Value": [
            f"{base}/studies/{outcome.study_instance_uid}/series/"
            f"{outcome.series_instance_uid}/instances/{outcome.sop_instance_uid}"]}  # fmt: skip
    return item


async def _store(request: Request, state: StateDep, entry: AuditEntry, study: str | None
                 ) -> JSONResponse:  # fmt: skip
    if not state.settings.dicomweb_stow:
        raise ProblemException(
            405,
            UnsupportedFeature("STOW-RS is turned off here",
                               hint="Set PACSYNC_DICOMWEB_STOW=true, or send by C-STORE."),
            {"Allow": "GET"},
        )  # fmt: skip
    boundary = _boundary(request.headers.get("content-type", ""))
    with tempfile.TemporaryFile(dir=state.settings.home) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_STOW_BYTES:
                raise ProblemException(413, InvalidRequest(
                    f"the request is over {MAX_STOW_BYTES:,} bytes",
                    hint="Send the study in several requests."))  # fmt: skip
            spool.write(chunk)
        spool.flush()
        if size == 0:
            raise InvalidRequest("the request has no body", hint="Send the instances.")
        with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as body:
            parts = list(_parts(body, boundary))
    if not parts:
        raise InvalidRequest("the multipart body has no parts", hint="Send the instances.")

    outcomes = await run_in_threadpool(stow.store, state.settings, state.store, parts, study)
    base = base_url(request)
    stored = [o for o in outcomes if o.failure is None]
    failed = [o for o in outcomes if o.failure is not None]
    answer: dict[str, Any] = {}
    studies = {o.study_instance_uid for o in stored}
    if study is not None or len(studies) == 1:
        answer["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{study or studies.pop()}"]}
    if failed:
        answer["00081198"] = {"vr": "SQ", "Value": [_sequence_item(o, base) for o in failed]}
    if stored:
        answer["00081199"] = {"vr": "SQ", "Value": [_sequence_item(o, base) for o in stored]}
    entry.detail = {
        "stored": len(stored),
        "failed": [{"sop_instance_uid": o.sop_instance_uid, "reason": o.reason} for o in failed],
    }
    which = "all" if not failed else ("some" if stored else "none")
    entry.outcome = "ok" if which == "all" else f"{len(failed)} failed"
    return JSONResponse(answer, status_code=_STATUS[which], media_type=DICOM_JSON)


_STOW: dict[int | str, dict[str, Any]] = {
    200: {"content": {DICOM_JSON: {"schema": {"type": "object"}}}},
    202: {"description": "some instances were stored (see FailedSOPSequence)"},
    409: {"description": "no instance was stored (see FailedSOPSequence)"},
    **problems.responses(400, 405, 413, 415),
}


@router.post("/studies", summary="STOW-RS: store instances into the inbox", responses=_STOW)
async def store_instances(
    request: Request,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("dicomweb.store", Role.OPERATOR)],
) -> JSONResponse:
    return await _store(request, state, entry, None)


@router.post(
    "/studies/{study}",
    summary="STOW-RS: store instances of one study into the inbox",
    responses=_STOW,
)
async def store_study_instances(
    study: UID,
    request: Request,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("dicomweb.store", Role.OPERATOR, "study")],
) -> JSONResponse:
    return await _store(request, state, entry, study)
