"""Renders one frame of a DICOM Part 10 file as an 8-bit PNG or JPEG (WADO-RS
``/rendered`` and ``/thumbnail``).

Only the requested frame is decoded: the header is read without the pixel data,
then pydicom reads and decodes the one frame (pylibjpeg plugins: JPEG 2000, JPEG
baseline/extended/lossless, JPEG-LS, RLE; native data without a plugin).

Grayscale frames go through the standard pipeline in one 8-bit lookup table over
every storable value (so a 16-bit frame costs one table index per pixel):

1. Modality LUT: Rescale Slope/Intercept, or the Modality LUT Sequence;
2. VOI: the caller's window (center, width), else the file's first Window
   Center/Width (with its VOI LUT Function), else its first VOI LUT, else the
   frame's minimum and maximum;
3. MONOCHROME1 is inverted.

Enhanced multi-frame objects take rescale and window from the frame's functional
groups (per-frame first, then shared).  Colour frames are shown as RGB (YBR
converted by pydicom, PALETTE COLOR through its lookup tables) and ignore the window.

``size`` bounds the longer side; the aspect ratio is kept and an image is never
enlarged: a viewer scales up for free, while enlarged pixels cost bytes and add
nothing.  Named thumbnail sizes are in :data:`THUMBNAIL_SIZES`.

Errors: a frame out of range or a file without pixel data is NotFound, pixel data
that cannot be decoded is UnsupportedFeature naming the transfer syntax, a file
that is not DICOM is InvalidDicom, bad parameters are InvalidRequest, a missing
path is NotFound and an unreadable one ArchiveOffline.  Nothing else escapes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut
from pydicom.pixels.utils import pixel_array
from pydicom.uid import DeflatedExplicitVRLittleEndian

from pacsync.connectors.dicom.grayscale import grayscale
from pacsync.errors import (
    ArchiveOffline,
    InvalidDicom,
    InvalidRequest,
    NotFound,
    PacsyncError,
    UnsupportedFeature,
)

__all__ = ["MEDIA_TYPES", "THUMBNAIL_SIZES", "render"]

THUMBNAIL_SIZES: dict[str, int] = {"small": 64, "medium": 128, "large": 256}
"""Longer side in pixels of each named thumbnail size."""

MEDIA_TYPES: dict[str, str] = {"image/png": "PNG", "image/jpeg": "JPEG"}
"""The media types :func:`render` produces and Pillow's format for each."""

Array = npt.NDArray[Any]


def render(
    data: bytes | Path,
    *,
    frame: int = 1,
    size: int | None = None,
    media_type: str = "image/png",
    window: tuple[float, float] | None = None,
    quality: int = 90,
) -> bytes:
    """One frame (counted from 1) of the DICOM file ``data`` as PNG or JPEG bytes."""
    image_format = _check_parameters(frame, size, media_type, window, quality)
    header, pixels = _decode(data, frame)
    try:
        image = _to_image(header, pixels, frame - 1, window)
        if size is not None:
            image = _fit(image, size)
        return _encode(image, image_format, quality)
    except PacsyncError:
        raise
    except Exception as exc:
        raise UnsupportedFeature(f"cannot render frame {frame}: {exc}", hint=_DISPLAY_HINT) from exc


def _check_parameters(
    frame: int,
    size: int | None,
    media_type: str,
    window: tuple[float, float] | None,
    quality: int,
) -> str:
    if media_type not in MEDIA_TYPES:
        raise InvalidRequest(
            f"cannot render as {media_type!r}",
            hint="Ask for image/png or image/jpeg (the Accept header).",
        )
    if frame < 1:
        raise InvalidRequest(f"frame {frame} does not exist", hint="Frames count from 1.")
    if size is not None and size < 1:
        raise InvalidRequest(f"size {size} is not positive", hint="Give a size of 1 or more.")
    if not 1 <= quality <= 100:
        raise InvalidRequest(f"quality {quality} is out of range", hint="Give 1 to 100.")
    if window is not None and not (np.isfinite(window).all() and window[1] > 0):
        raise InvalidRequest(
            f"window {window} is not a center and a positive width",
            hint="Give window=center,width,linear with a width above 0.",
        )
    return MEDIA_TYPES[media_type]


def _decode(data: bytes | Path, frame: int) -> tuple[Dataset, Array]:
    """The header (without pixel data) and the decoded pixels of one frame."""
    try:
        with _open(data) as fp:
            header = _header(fp)
            return header, _frame(fp, header, frame)
    except FileNotFoundError as exc:
        raise NotFound(f"no file {exc.filename}", hint=_MISSING_HINT) from exc
    except OSError as exc:
        raise ArchiveOffline(f"cannot read {exc.filename or 'the file'}: {exc}") from exc


def _open(data: bytes | Path) -> BinaryIO:
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(data)
    return Path(data).open("rb")


def _header(fp: BinaryIO) -> Dataset:
    """Every attribute before the pixel data; ``fp`` is left at the pixel data."""
    try:
        header = dcmread(fp, stop_before_pixels=True)
    except OSError:
        raise
    except InvalidDicomError as exc:
        raise InvalidDicom(f"not a DICOM Part 10 file: {exc}") from exc
    except Exception as exc:
        raise InvalidDicom(f"cannot read the DICOM header: {exc}") from exc
    if not header.file_meta.get("TransferSyntaxUID"):
        raise InvalidDicom("not a DICOM Part 10 file: no Transfer Syntax UID in its meta header")
    return header


def _frame(fp: BinaryIO, header: Dataset, frame: int) -> Array:
    """Frame ``frame`` (from 1) decoded; NotFound when there is no such frame."""
    try:
        source: BinaryIO | Dataset = fp
        if header.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
            # The dataset itself is compressed: no seeking to the pixel data.
            fp.seek(0)
            source = dcmread(fp)
            has_pixels = any(keyword in source for keyword in _PIXEL_KEYWORDS)
        else:
            has_pixels = bool(fp.read(1))
        if not has_pixels:
            raise NotFound("the file has no pixel data", hint=_NO_PIXELS_HINT)
        count = _frame_count(header)
        if frame > count:
            raise NotFound(f"frame {frame} of {count}", hint="Frames count from 1.")
        fp.seek(0)
        return pixel_array(source, index=frame - 1)
    except (PacsyncError, OSError):
        raise
    except Exception as exc:
        raise UnsupportedFeature(
            f"cannot decode frame {frame}: {exc}", hint=_syntax_hint(header)
        ) from exc


_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_NO_PIXELS_HINT = "The instance has no image (a report, a structure set, a waveform...)."
_MISSING_HINT = "The file was moved or deleted since it was indexed; rescan the archive."
_DISPLAY_HINT = (
    "The frame was decoded but its display attributes (rescale, window, lookup tables) "
    "are inconsistent; check the file with dciodvfy."
)


def _frame_count(header: Dataset) -> int:
    try:
        return max(int(header.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def _syntax_hint(header: Dataset) -> str:
    syntax = header.get("file_meta", Dataset()).get("TransferSyntaxUID")
    name = f"{syntax.name} ({syntax})" if syntax else "an unknown transfer syntax"
    try:
        decodable = syntax is not None and get_decoder(syntax).is_available
    except NotImplementedError:
        decodable = False
    if decodable:
        return (
            f"The {name} pixel data could not be decoded: the file is damaged or uses a "
            "variant the decoder does not handle. Check it with dciodvfy or convert it "
            "(gdcmconv --raw)."
        )
    return (
        f"Pixel data encoded as {name} is not decoded here; pacsync decodes native, "
        "RLE, JPEG, JPEG-LS and JPEG 2000 data. Convert the file (gdcmconv --raw)."
    )


def _to_image(
    header: Dataset, pixels: Array, index: int, window: tuple[float, float] | None
) -> Image.Image:
    photometric = str(header.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "PALETTE COLOR":
        return Image.fromarray(_palette(pixels, header))
    if pixels.ndim == 3:
        bits = int(header.get("BitsStored") or 8 * pixels.dtype.itemsize)
        return Image.fromarray(_to_uint8(pixels, bits))
    gray = grayscale(pixels, header, index, window)
    return Image.fromarray(255 - gray if photometric == "MONOCHROME1" else gray)


def _palette(pixels: Array, header: Dataset) -> Array:
    """Palette indices to RGB through one 8-bit table over every possible index."""
    if pixels.dtype.kind not in "ui" or pixels.dtype.itemsize > 2:
        return _to_uint8(apply_color_lut(pixels, header))
    unsigned = np.dtype(f"u{pixels.dtype.itemsize}")
    domain = np.arange(1 << (8 * unsigned.itemsize), dtype=unsigned)
    table = _to_uint8(apply_color_lut(domain, header))
    rgb: Array = table[pixels.view(unsigned)]
    return rgb


def _to_uint8(rgb: Array, bits: int | None = None) -> Array:
    """Colour samples of ``bits`` significant bits (default: the dtype's) as uint8."""
    if rgb.dtype == np.uint8:
        return rgb
    shift = max((bits or 8 * rgb.dtype.itemsize) - 8, 0)
    out: Array = np.minimum(rgb >> shift, 255).astype(np.uint8)
    return out


def _fit(image: Image.Image, size: int) -> Image.Image:
    """Scaled so that the longer side is at most ``size``, aspect ratio kept."""
    width, height = image.size
    longer = max(width, height)
    if longer <= size:
        return image
    target = (max(1, round(width * size / longer)), max(1, round(height * size / longer)))
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(image: Image.Image, image_format: str, quality: int) -> bytes:
    out = io.BytesIO()
    if image_format == "JPEG":
        image.save(out, format="JPEG", quality=quality)
    else:
        image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


if TYPE_CHECKING:
    from pacsync.imaging.ports import Renderer

    _conforms: Renderer = render  # mypy proves render matches the port
