"""Frames of an instance's pixel data as WADO-RS sends them (PS3.18 8.7.3, 10.4.1.1.3).

A frame goes out in the syntax it is stored in whenever the client accepts that: the
bytes of an uncompressed frame sliced from the pixel data, a compressed frame's
fragments joined as they are (JPEG, JPEG-LS, JPEG 2000, RLE) — never decoded and
encoded again.  Only when the client's Accept excludes the stored syntax is a frame
decoded (pydicom's decoders) to Explicit VR Little Endian; a syntax neither stored nor
uncompressed is :class:`NotAcceptable`.

A viewer asks for a multi-frame instance one frame a request, so a file's
:class:`FrameIndex` (where each frame's bytes are in it) is read once and kept by the
caller; each frame is then read from the file with one seek (:func:`read_frames`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from pacsync.errors import NotFound, UnsupportedFeature

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
ANY = "*"
_SLICEABLE = {EXPLICIT_LITTLE, IMPLICIT_LITTLE}  # pixel data bytes as the frames are sent
_DECODED = (EXPLICIT_LITTLE, IMPLICIT_LITTLE)  # what a decoded frame can be sent as


class NotAcceptable(UnsupportedFeature):
    """The client accepts neither the stored syntax nor an uncompressed one (HTTP 406)."""


@dataclass(frozen=True)
class Choice:
    """What a client accepts for frames: a part media type and its transfer syntaxes
    (``{"*"}``: any, sent as stored)."""

    media_type: str
    syntaxes: frozenset[str]

    def takes(self, syntax: str) -> bool:
        return ANY in self.syntaxes or syntax in self.syntaxes


@dataclass(frozen=True)
class Frames:
    media_type: str  # of each part
    transfer_syntax: str
    frames: list[bytes]


@dataclass(frozen=True)
class FrameIndex:
    """Where each frame of a file's pixel data is: per frame, its (offset, length) spans
    in the file (one for an uncompressed frame, one per fragment for a compressed one)."""

    transfer_syntax: str
    spans: tuple[tuple[tuple[int, int], ...], ...]

    @property
    def count(self) -> int:
        return len(self.spans)


def frame_index(path: Path) -> FrameIndex | None:
    """The frames of the file at ``path``; None when they cannot be located without
    decoding (no pixel data, 1-bit, big endian or deflated data, an extended offset
    table, or several frames of several fragments each and no offset table)."""
    from pydicom import dcmread
    from pydicom.dataelem import RawDataElement

    dataset = dcmread(path)
    element = dataset.get_item(0x7FE00010)  # as read: where its value is in the file
    if not isinstance(element, RawDataElement) or "ExtendedOffsetTable" in dataset:
        return None
    syntax = str(dataset.file_meta.TransferSyntaxUID)
    count = int(dataset.get("NumberOfFrames") or 1)
    start = int(element.value_tell)
    if syntax in _SLICEABLE:
        bits = int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1))
        bits *= int(dataset.BitsAllocated)
        if bits % 8:
            return None
        size = bits // 8
        return FrameIndex(syntax, tuple(((start + n * size, size),) for n in range(count)))
    if not encapsulated(syntax):
        return None
    spans = _fragments(bytes(element.value), start, count)
    return None if spans is None else FrameIndex(syntax, spans)


def _fragments(
    value: bytes, start: int, count: int
) -> tuple[tuple[tuple[int, int], ...], ...] | None:
    """Each frame's fragments in an encapsulated value found at file offset ``start``."""
    import struct

    items: list[tuple[int, int, int]] = []  # (offset of the item tag, of its value, length)
    position = 0
    while position + 8 <= len(value):
        group, element, length = struct.unpack_from("<HHI", value, position)
        if (group, element) == (0xFFFE, 0xE0DD):
            break
        if (group, element) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
            return None
        items.append((position, position + 8, length))
        position += 8 + length
    if not items:
        return None
    table, fragments = items[0], items[1:]
    first = fragments[0][0] if fragments else 0
    if table[2]:
        offsets = struct.unpack_from(f"<{table[2] // 4}I", value, table[1])
        if len(offsets) != count:
            return None
        bounds = [*(first + o for o in offsets), len(value) + 1]
        frames = [[f for f in fragments if bounds[n] <= f[0] < bounds[n + 1]] for n in range(count)]
    elif len(fragments) == count:
        frames = [[f] for f in fragments]
    elif count == 1:
        frames = [fragments]
    else:
        return None
    return tuple(tuple((start + f[1], f[2]) for f in frame) for frame in frames)


def read_frames(
    path: Path, index: FrameIndex, numbers: Sequence[int], accepted: Sequence[Choice]
) -> Frames | None:
    """Frames ``numbers`` read from ``path`` as stored, when one of ``accepted`` takes the
    stored syntax; None when they must be decoded (see :func:`frames`)."""
    outside = [n for n in numbers if not 1 <= n <= index.count]
    if outside:
        raise NotFound(
            f"frame {outside[0]} is out of range: the instance has {index.count} frame(s)",
            hint=f"Ask for frames 1 to {index.count}.",
        )
    choice = next((c for c in accepted if c.takes(index.transfer_syntax)), None)
    if choice is None:
        return None
    found = []
    with open(path, "rb") as file:
        for number in numbers:
            parts = []
            for offset, length in index.spans[number - 1]:
                file.seek(offset)
                parts.append(file.read(length))
            found.append(b"".join(parts))
    return Frames(choice.media_type, index.transfer_syntax, found)


def stored_syntax(source: bytes | Path) -> str:
    from pydicom import dcmread

    dataset = dcmread(_readable(source), stop_before_pixels=True)
    return str(dataset.file_meta.TransferSyntaxUID)


def frames(source: bytes | Path, numbers: Sequence[int], accepted: Sequence[Choice]) -> Frames:
    """Frames ``numbers`` (counting from 1) of the Part 10 file ``source``, in the first
    of ``accepted`` that can take them.  NotFound for a frame out of range or no pixel
    data; NotAcceptable when no choice fits; UnsupportedFeature when the pixel data
    cannot be decoded for a client that needs it uncompressed."""
    from pydicom import dcmread

    dataset = dcmread(_readable(source))
    if "PixelData" not in dataset:
        raise NotFound("the instance has no pixel data", hint="Retrieve its metadata instead.")
    count = int(dataset.get("NumberOfFrames") or 1)
    outside = [n for n in numbers if not 1 <= n <= count]
    if outside:
        raise NotFound(
            f"frame {outside[0]} is out of range: the instance has {count} frame(s)",
            hint=f"Ask for frames 1 to {count}.",
        )
    syntax = str(dataset.file_meta.TransferSyntaxUID)
    for choice in accepted:
        if choice.takes(syntax) and (syntax in _SLICEABLE or encapsulated(syntax)):
            return Frames(choice.media_type, syntax, _native(dataset, syntax, numbers, count))
    for choice in accepted:
        wanted = next((s for s in _DECODED if s in choice.syntaxes), None)
        if wanted is None and ANY in choice.syntaxes:
            wanted = EXPLICIT_LITTLE  # a stored syntax that cannot be sliced (big endian)
        if wanted is not None and choice.media_type == "application/octet-stream":
            return Frames(choice.media_type, wanted, [_decoded(dataset, n) for n in numbers])
    asked = ", ".join(f"{c.media_type} ({'/'.join(sorted(c.syntaxes))})" for c in accepted)
    raise NotAcceptable(
        f"the frames are stored as {syntax}; the request accepts only {asked}",
        hint="Accept multipart/related; type=application/octet-stream; transfer-syntax=* "
        f"(as stored) or transfer-syntax={EXPLICIT_LITTLE} (decoded).",
    )


def _readable(source: bytes | Path) -> Any:
    return BytesIO(source) if isinstance(source, bytes) else source


def encapsulated(syntax: str) -> bool:
    from pydicom.uid import UID

    return UID(syntax).is_encapsulated


def _native(dataset: Any, syntax: str, numbers: Sequence[int], count: int) -> list[bytes]:
    data: bytes = dataset.PixelData
    if syntax in _SLICEABLE:
        bits = int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1))
        bits *= int(dataset.BitsAllocated)
        if bits % 8:  # 1-bit frames do not start on byte boundaries: decode them
            return [_decoded(dataset, n) for n in numbers]
        size = bits // 8
        return [data[(n - 1) * size : n * size] for n in numbers]
    from pydicom.encaps import generate_frames

    wanted = set(numbers)
    found: dict[int, bytes] = {}
    for index, frame in enumerate(generate_frames(data, number_of_frames=count), 1):
        if index in wanted:
            found[index] = frame
            if len(found) == len(wanted):
                break
    return [found[n] for n in numbers]


def _decoded(dataset: Any, number: int) -> bytes:
    from pydicom.pixels.utils import pixel_array

    try:
        array = pixel_array(dataset, index=number - 1, raw=True)
    except (NotImplementedError, RuntimeError, ValueError) as error:
        raise UnsupportedFeature(
            f"cannot decode {dataset.file_meta.TransferSyntaxUID}: {error}",
            hint="Accept the stored syntax (transfer-syntax=*).",
        ) from None
    little: bytes = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return little
