"""Grayscale display pipeline of one decoded frame: Modality LUT, then VOI, into 8 bits.

Stored values of at most 16 bits are not transformed pixel by pixel: the pipeline
runs once over every storable value (65,536 at most) and the frame is mapped through
the resulting 8-bit table.  Wider integers and float pixel data go through the same
functions directly.

Where the parameters come from: rescale and window of an enhanced multi-frame object
are in the frame's functional groups (Pixel Value Transformation, Frame VOI LUT;
per-frame first, then shared), otherwise at the top level of the dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_modality_lut

__all__ = ["grayscale"]

Array = npt.NDArray[Any]
Window = tuple[float, float]


def grayscale(pixels: Array, header: Dataset, index: int, window: Window | None) -> Array:
    """The frame ``pixels`` (frame ``index`` from 0) as uint8, 0 black, before any
    MONOCHROME1 inversion; ``window`` (center, width, linear) overrides the file's VOI."""
    if pixels.dtype.kind in "ui" and pixels.dtype.itemsize <= 2:
        unsigned = np.dtype(f"u{pixels.dtype.itemsize}")
        domain = np.arange(1 << (8 * unsigned.itemsize), dtype=unsigned).view(pixels.dtype)
        values = _modality(domain, header, index)

        def observed() -> tuple[float, float]:
            low, high = pixels.min(), pixels.max()
            return _range(values[(domain >= low) & (domain <= high)])

        table = _voi(values, header, index, window, observed)
        mapped: Array = table[pixels.view(unsigned)]
        return mapped
    values = _modality(pixels, header, index)
    return _voi(values, header, index, window, lambda: _range(values))


def _modality(stored: Array, header: Dataset, index: int) -> Array:
    """Stored values to modality values (Hounsfield units, ...), as float64."""
    if "ModalityLUTSequence" in header:
        return apply_modality_lut(stored, header).astype(np.float64)
    slope = _number(_attribute(header, index, "PixelValueTransformationSequence", "RescaleSlope"))
    intercept = _number(
        _attribute(header, index, "PixelValueTransformationSequence", "RescaleIntercept")
    )
    values = stored.astype(np.float64)
    if slope is not None and slope != 1:
        values *= slope
    if intercept:
        values += intercept
    return values


def _voi(
    values: Array,
    header: Dataset,
    index: int,
    window: Window | None,
    observed: Callable[[], tuple[float, float]],
) -> Array:
    """Modality values to uint8 by the first VOI that applies (see the module of render)."""
    if window is not None:
        return _linear(values, *window)
    center = _number(_attribute(header, index, "FrameVOILUTSequence", "WindowCenter"))
    width = _number(_attribute(header, index, "FrameVOILUTSequence", "WindowWidth"))
    if center is not None and width is not None and width > 0:
        function = _attribute(header, index, "FrameVOILUTSequence", "VOILUTFunction")
        function = str(function or "LINEAR").strip().upper()
        if function == "SIGMOID":
            return _sigmoid(values, center, width)
        if function == "LINEAR_EXACT":
            return _scale(values, center - width / 2, center + width / 2)
        return _linear(values, center, width)
    if header.get("VOILUTSequence"):
        return _voi_lut(values, header)
    low, high = observed()
    return _scale(values, low, high)


def _linear(values: Array, center: float, width: float) -> Array:
    """PS3.3 C.11.2.1.2.1: LINEAR (width at least 1; LINEAR_EXACT below that)."""
    if width < 1:
        return _scale(values, center - width / 2, center + width / 2)
    low = center - 0.5 - (width - 1) / 2
    return _scale(values, low, low + width - 1)


def _sigmoid(values: Array, center: float, width: float) -> Array:
    with np.errstate(over="ignore"):
        out = 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    np.nan_to_num(out, copy=False)
    out += 0.5
    return out.astype(np.uint8)


def _scale(values: Array, low: float, high: float) -> Array:
    """``low`` and below black, ``high`` and above white, linear between."""
    if not high > low:
        return np.where(values > low, np.uint8(255), np.uint8(0)).astype(np.uint8)
    out = (values - low) * (255.0 / (high - low))
    np.clip(out, 0.0, 255.0, out=out)
    np.nan_to_num(out, copy=False)  # NaN in float pixel data shows black
    out += 0.5
    return out.astype(np.uint8)


def _voi_lut(values: Array, header: Dataset) -> Array:
    """The first VOI LUT of the VOI LUT Sequence, its output scaled to 8 bits."""
    item = header.VOILUTSequence[0]
    entries, first, bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 1 << 16
    data = item.LUTData
    if isinstance(data, bytes):
        little = header.file_meta.TransferSyntaxUID.is_little_endian
        lut = np.frombuffer(data, dtype="<u2" if little else ">u2").astype(np.float64)
    else:
        lut = np.asarray(data if isinstance(data, list) else [data], dtype=np.float64)
    lut = lut[:entries]
    top = max(float(2**bits - 1), float(lut.max(initial=0)))
    positions = np.clip(np.rint(values) - first, 0, len(lut) - 1).astype(np.intp)
    return _scale(lut[positions], 0.0, top)


def _attribute(header: Dataset, index: int, group: str, keyword: str) -> Any:
    """``keyword`` of the frame's functional group ``group``, else of the dataset."""
    for groups in _functional_groups(header, index):
        items = groups.get(group)
        if items and keyword in items[0]:
            return items[0][keyword].value
    return header.get(keyword)


def _functional_groups(header: Dataset, index: int) -> list[Dataset]:
    found: list[Dataset] = []
    per_frame = header.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame):
        found.append(per_frame[index])
    shared = header.get("SharedFunctionalGroupsSequence")
    if shared:
        found.append(shared[0])
    return found


def _number(value: Any) -> float | None:
    """The first value of a (possibly multi-valued) DS/IS/FD attribute, if numeric."""
    if value is None or isinstance(value, str | bytes):
        return None
    if not isinstance(value, int | float):
        try:
            value = next(iter(value))
        except (TypeError, StopIteration):
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _range(values: Array) -> tuple[float, float]:
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if finite.size == 0:
        return 0.0, 0.0
    return float(finite.min()), float(finite.max())
