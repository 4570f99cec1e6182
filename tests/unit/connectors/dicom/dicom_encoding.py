"""Hand-encoded DICOM bytes for the header reader's tests: elements, sequences and
Part 10 files built byte by byte (PS3.5 section 7, PS3.10 section 7), so that a test
can hold exactly the structure it is about, malformed ones included."""

from __future__ import annotations

import struct

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
UNDEFINED = 0xFFFFFFFF
LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def element(
    tag: int, vr: str | None, value: bytes, *, big: bool = False, length: int | None = None
) -> bytes:
    """One element: explicit VR when ``vr`` is given, implicit when None; ``length``
    overrides the encoded length (an undefined or a lying one)."""
    order = ">" if big else "<"
    size = len(value) if length is None else length
    head = struct.pack(order + "HH", tag >> 16, tag & 0xFFFF)
    if vr is None:
        return head + struct.pack(order + "L", size) + value
    if vr in LONG_VRS:
        return head + vr.encode() + b"\0\0" + struct.pack(order + "L", size) + value
    return head + vr.encode() + struct.pack(order + "H", size) + value


def padded(text: str | bytes, encoding: str = "latin-1", pad: bytes = b" ") -> bytes:
    data = text.encode(encoding) if isinstance(text, str) else text
    return data + pad if len(data) % 2 else data


def uid(value: str) -> bytes:
    return padded(value, pad=b"\0")


def item(content: bytes, *, undefined: bool = True, big: bool = False) -> bytes:
    order = ">" if big else "<"
    if undefined:
        return (
            struct.pack(order + "HHL", 0xFFFE, 0xE000, UNDEFINED)
            + content
            + struct.pack(order + "HHL", 0xFFFE, 0xE00D, 0)
        )
    return struct.pack(order + "HHL", 0xFFFE, 0xE000, len(content)) + content


def sequence(
    tag: int,
    items: list[bytes],
    *,
    vr: str | None = "SQ",
    undefined: bool = True,
    big: bool = False,
) -> bytes:
    """A sequence of already encoded items, of undefined length (with its delimiter)
    or of the items' length."""
    order = ">" if big else "<"
    body = b"".join(items)
    if undefined:
        delimiter = struct.pack(order + "HHL", 0xFFFE, 0xE0DD, 0)
        return element(tag, vr, body + delimiter, big=big, length=UNDEFINED)
    return element(tag, vr, body, big=big)


def fragments(tag: int, parts: list[bytes], *, vr: str | None = "OB", big: bool = False) -> bytes:
    """An undefined-length value of items of bytes (as encapsulated pixel data)."""
    order = ">" if big else "<"
    body = b"".join(struct.pack(order + "HHL", 0xFFFE, 0xE000, len(p)) + p for p in parts)
    delimiter = struct.pack(order + "HHL", 0xFFFE, 0xE0DD, 0)
    return element(tag, vr, body + delimiter, big=big, length=UNDEFINED)


def meta(transfer_syntax: str | None, *, sop_instance_uid: str = "1.2.3.4") -> bytes:
    """File meta information (explicit VR little endian) with its group length."""
    elements = element(0x00020001, "OB", b"\0\1")
    elements += element(0x00020002, "UI", uid("1.2.840.10008.5.1.4.1.1.7"))
    elements += element(0x00020003, "UI", uid(sop_instance_uid))
    if transfer_syntax is not None:
        elements += element(0x00020010, "UI", uid(transfer_syntax))
    elements += element(0x00020012, "UI", uid("1.2.826.0.1.3680043.8.498.1"))
    return element(0x00020000, "UL", struct.pack("<L", len(elements))) + elements


def part10(
    dataset: bytes, transfer_syntax: str | None = EXPLICIT_LE, *, head: bytes = b""
) -> bytes:
    """A Part 10 file: preamble, DICM, file meta information (or ``head`` in its place
    when given), then the dataset as encoded."""
    return b"\0" * 128 + b"DICM" + (head or meta(transfer_syntax)) + dataset


def minimal(
    extra: bytes = b"", *, big: bool = False, implicit: bool = False, sop: str = "1.2.3.4"
) -> bytes:
    """A dataset with the SOP Class and Instance UIDs, then ``extra`` (tags after
    (0008,0018), in order)."""

    def vr(name: str) -> str | None:
        return None if implicit else name

    return (
        element(0x00080016, vr("UI"), uid("1.2.840.10008.5.1.4.1.1.7"), big=big)
        + element(0x00080018, vr("UI"), uid(sop), big=big)
        + extra
    )
