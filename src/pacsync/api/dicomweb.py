"""What the DICOMweb routes share (PS3.18): the router prefix, media types, the shape of
UIDs in paths, and the reading of Accept headers.  QIDO-RS lives in ``routes/qido.py``,
WADO-RS retrieval and metadata in ``routes/wado.py``, frames and bulk data in
``routes/frames.py``, rendered frames and thumbnails in ``routes/rendered.py``, STOW-RS
in ``routes/stow.py``; who may call them in ``dicomweb_access.py``."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from pacsync.api.deps import AUTHENTICATED
from pacsync.api.problems import ProblemException
from pacsync.connectors.dicom.frames import ANY, EXPLICIT_LITTLE, Choice, NotAcceptable

PREFIX = "/dicomweb"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
UID = Annotated[str, Path(pattern=r"^[0-9.]{1,64}$")]
BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
JSON_LIST: dict[str, Any] = {"schema": {"type": "array", "items": {"type": "object"}}}
# the transfer syntaxes each image media type stands for (PS3.18 table 8.7.3-2)
IMAGE_SYNTAXES: dict[str, frozenset[str]] = {
    "image/jpeg": frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                             "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"}),
    "image/jls": frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}),
    "image/x-jls": frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}),
    "image/jp2": frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"}),
    "image/jpx": frozenset({"1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"}),
    "image/dicom-rle": frozenset({"1.2.840.10008.1.2.5"}),
    "image/x-dicom-rle": frozenset({"1.2.840.10008.1.2.5"}),
}  # fmt: skip
_PARAM = re.compile(r'\s*([A-Za-z-]+)\s*=\s*"?([^";]*)"?\s*')


def base_url(request: Request) -> str:
    """The DICOMweb root the request came through (``…/api/v1/dicomweb``), for
    RetrieveURLs and BulkDataURIs."""
    path = request.url.path
    root = path[: path.index(PREFIX) + len(PREFIX)] if PREFIX in path else PREFIX
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def router() -> APIRouter:
    return APIRouter(prefix=PREFIX, tags=["dicomweb"], responses=AUTHENTICATED)


def media_ranges(accept: str | None) -> list[tuple[str, dict[str, str]]]:
    """The media ranges of an Accept header with their parameters (names lower case),
    in the order given (q values are not weighed)."""
    found = []
    for entry in (accept or "").split(","):
        parts = entry.split(";")
        media = parts[0].strip().lower()
        if not media:
            continue
        params = {}
        for part in parts[1:]:
            matched = _PARAM.fullmatch(part)
            if matched:
                params[matched.group(1).lower()] = matched.group(2).strip()
        found.append((media, params))
    return found


def frame_choices(accept: str | None) -> list[Choice]:
    """What a request for frames (or bulk pixel data) accepts.  No Accept or ``*/*``:
    the stored syntax; ``type=application/octet-stream`` alone: Explicit VR Little
    Endian (the standard's default); ``transfer-syntax=*``: as stored."""
    choices: list[Choice] = []
    for media, params in media_ranges(accept) or [("*/*", {})]:
        if media == "multipart/related":
            inner = params.get("type", OCTET_STREAM).lower()
        elif media in ("*/*", "multipart/*") or media == OCTET_STREAM or media in IMAGE_SYNTAXES:
            inner = media
        else:
            continue
        syntax = params.get("transfer-syntax")
        if inner in ("*/*", "multipart/*", "*"):
            choices.append(Choice(OCTET_STREAM, frozenset({ANY})))
        elif inner == OCTET_STREAM:
            choices.append(Choice(OCTET_STREAM, frozenset({syntax or EXPLICIT_LITTLE})))
        elif inner in IMAGE_SYNTAXES:
            fits = IMAGE_SYNTAXES[inner]
            chosen = fits if syntax in (None, ANY) else fits & {syntax}
            if chosen:
                choices.append(Choice(inner, frozenset(chosen)))
    if not choices:
        raise not_acceptable(
            NotAcceptable(
                f"cannot answer frames with {accept!r}",
                hint="Accept multipart/related; type=application/octet-stream; "
                "transfer-syntax=* (as stored) or a transfer syntax.",
            )
        )
    return choices


def not_acceptable(error: NotAcceptable) -> ProblemException:
    """406 with the problem document of ``error``."""
    return ProblemException(406, error)
