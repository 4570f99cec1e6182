"""gzip for JSON answers (QIDO-RS results and metadata shrink five- to tenfold) when the
client accepts it; images, DICOM and multipart bodies are sent as they are (already
compressed, or streamed and served by range)."""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp

MINIMUM_BYTES = 1024
LEVEL = 5  # fast; 9 takes three times longer for a few percent
NOT_COMPRESSED = (
    "image/*",
    "video/*",
    "audio/*",
    "multipart/*",
    "application/dicom",
    "application/octet-stream",
    "application/zip",
    "application/gzip",
    "text/event-stream",
)


class JsonGzip(GZipMiddleware):
    def __init__(self, app: ASGIApp) -> None:
        super().__init__(
            app,
            minimum_size=MINIMUM_BYTES,
            compresslevel=LEVEL,
            exclude_content_types=NOT_COMPRESSED,
        )
