"""What the DICOMweb routes share (PS3.18): the router prefix, media types and the
shape of UIDs in paths.  QIDO-RS lives in ``routes/qido.py``, WADO-RS retrieval and
metadata in ``routes/wado.py``, rendered frames and thumbnails in ``routes/rendered.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from pacsync.api.deps import AUTHENTICATED

PREFIX = "/dicomweb"
DICOM_JSON = "application/dicom+json"
UID = Annotated[str, Path(pattern=r"^[0-9.]{1,64}$")]
BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
JSON_LIST: dict[str, Any] = {"schema": {"type": "array", "items": {"type": "object"}}}


def router() -> APIRouter:
    return APIRouter(prefix=PREFIX, tags=["dicomweb"], responses=AUTHENTICATED)
