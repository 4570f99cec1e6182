"""Transcoding an instance for a client that asks for another transfer syntax: any
compressed syntax pydicom's decoders (pylibjpeg) read is decompressed to Explicit VR
Little Endian."""

from __future__ import annotations

from io import BytesIO

from pacsync.errors import UnsupportedFeature

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"


def transcoded(data: bytes, transfer_syntax: str) -> bytes:
    """``data`` (a Part 10 file) in ``transfer_syntax``; only the uncompressed little
    endian syntaxes are made."""
    from pydicom import dcmread
    from pydicom.uid import UID

    if transfer_syntax not in (EXPLICIT_LITTLE, IMPLICIT_LITTLE):
        raise UnsupportedFeature(
            f"transcoding to transfer syntax {transfer_syntax} is not supported",
            hint=f"Ask for the stored syntax (transfer-syntax=*) or {EXPLICIT_LITTLE}.",
        )
    dataset = dcmread(BytesIO(data))
    if dataset.file_meta.TransferSyntaxUID == transfer_syntax:
        return data
    try:
        if dataset.file_meta.TransferSyntaxUID.is_compressed:
            dataset.decompress()
        else:
            dataset.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    except (NotImplementedError, RuntimeError, ValueError) as error:
        raise UnsupportedFeature(
            f"cannot decode {dataset.file_meta.TransferSyntaxUID}: {error}",
            hint="Ask for the stored syntax (transfer-syntax=*).",
        ) from None
    if transfer_syntax == IMPLICIT_LITTLE:
        dataset.file_meta.TransferSyntaxUID = UID(IMPLICIT_LITTLE)
    out = BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()
