"""Rendered frames and thumbnails, rendered once and served from a blob store
(WADO-RS ``/rendered`` and ``/thumbnail``), and the DICOMweb query parameters that
shape them.

The cache key is the caller's ``source_key`` plus every parameter of the rendering.
The caller builds ``source_key`` from the archive, the SOP Instance UID and the
file's content hash (or size and mtime), so a file that changes gets new keys and
is rendered again; stale renderings are left to the store's eviction.
:data:`RENDERING_VERSION` is part of every key: raise it when the renderer's output
changes and every older rendering stops being served.

Two requests that miss the same key at once both render; the second write
replaces the first with the same bytes.  A store that fails to read or write
never fails a request: the image is rendered (and served) without it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path

from pacsync.errors import InvalidRequest
from pacsync.imaging.ports import BlobStore, Renderer

__all__ = ["RENDERING_VERSION", "RenderedCache", "parse_viewport", "parse_window", "rendering_key"]

log = logging.getLogger(__name__)

RENDERING_VERSION = 1


class RenderedCache:
    """Renderings by ``source_key`` and parameters, in ``blobs``, made by ``renderer``."""

    def __init__(self, blobs: BlobStore, renderer: Renderer) -> None:
        self._blobs = blobs
        self._renderer = renderer

    def get(
        self,
        source_key: str,
        load: Callable[[], bytes | Path],
        *,
        frame: int = 1,
        size: int | None = None,
        media_type: str = "image/png",
        window: tuple[float, float] | None = None,
        quality: int = 90,
    ) -> bytes:
        """The rendering of ``frame`` of the file that ``load`` gives (called only when
        the rendering is not stored yet).  Errors are the renderer's and ``load``'s."""
        key = rendering_key(
            source_key,
            frame=frame,
            size=size,
            media_type=media_type,
            window=window,
            quality=quality,
        )
        try:
            cached = self._blobs.read(key)
        except OSError as exc:
            log.warning("rendering cache unreadable, rendering %s again: %s", source_key, exc)
            cached = None
        if cached:
            return cached
        rendered = self._renderer(
            load(), frame=frame, size=size, media_type=media_type, window=window, quality=quality
        )
        try:
            self._blobs.create(key, rendered)
        except OSError as exc:
            log.warning("rendering of %s not cached: %s", source_key, exc)
        return rendered


def rendering_key(
    source_key: str,
    *,
    frame: int,
    size: int | None,
    media_type: str,
    window: tuple[float, float] | None,
    quality: int,
) -> str:
    """The blob key of one rendering: unambiguous, equal for equal parameters
    (a window of ints or floats alike; the quality only for JPEG, which uses it)."""
    parts: list[object] = [source_key, frame, size, media_type]
    parts.append(None if window is None else [float(window[0]), float(window[1])])
    parts.append(quality if media_type == "image/jpeg" else None)
    return f"rendered/v{RENDERING_VERSION}/" + json.dumps(parts, separators=(",", ":"))


def parse_viewport(value: str | None) -> int | None:
    """``viewport=width,height`` as the longer side that fits it whatever the image's
    aspect ratio (the smaller of the two); None when absent.  Cropping (the six-value
    form) is not supported."""
    if value is None or not value.strip():
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 2:
        raise InvalidRequest(
            f"viewport {value!r} is not width,height",
            hint="Give viewport=width,height in pixels, e.g. viewport=512,512 "
            "(a source region is not supported).",
        )
    sides = [_positive_int(part, "viewport") for part in parts]
    return min(sides)


def parse_window(value: str | None) -> tuple[float, float] | None:
    """``window=center,width,linear`` as (center, width); None when absent.  The
    function may be left out; ``linear`` is the only one supported."""
    if value is None or not value.strip():
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) not in (2, 3):
        raise InvalidRequest(
            f"window {value!r} is not center,width,function",
            hint="Give window=center,width,linear, e.g. window=40,400,linear.",
        )
    if len(parts) == 3 and parts[2].lower() != "linear":
        raise InvalidRequest(
            f"window function {parts[2]!r} is not supported",
            hint="Use the linear function: window=center,width,linear.",
        )
    center = _finite(parts[0], "window center")
    width = _finite(parts[1], "window width")
    if width <= 0:
        raise InvalidRequest(
            f"window width {parts[1]} is not positive",
            hint="Give a width above 0, e.g. window=40,400,linear.",
        )
    return center, width


def _positive_int(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise InvalidRequest(
            f"{name} {text!r} is not a positive whole number of pixels",
            hint=f"Give {name}=width,height with whole numbers above 0.",
        )
    return int(text)


def _finite(text: str, name: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidRequest(
            f"{name} {text!r} is not a number",
            hint="Give window=center,width,linear with decimal numbers, e.g. 40,400,linear.",
        )
    return number
