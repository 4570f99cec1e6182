"""The File Meta Information written for a received data set is, byte for byte, the
one pynetdicom encodes for the same C-STORE."""

from __future__ import annotations

import pytest
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
)
from pynetdicom.dsutils import create_file_meta, encode_file_meta

from pacsync.connectors.dicom import file_meta

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


@pytest.mark.parametrize(("sop_class", "sop_uid", "syntax"), [
    (CT, "1.2.826.0.1.3680043.8.498.5151.1.1.7", ExplicitVRLittleEndian),  # odd lengths
    (MR, "1.2.3.44", ImplicitVRLittleEndian),
    (CT, "1.2.3.4", JPEG2000Lossless),
    (MR, "2.25.123456789012345678901234567890", JPEGBaseline8Bit),
])  # fmt: skip
def test_the_file_meta_is_the_one_pynetdicom_encodes(
    sop_class: str, sop_uid: str, syntax: str
) -> None:
    made = create_file_meta(sop_class_uid=sop_class, sop_instance_uid=sop_uid,
                            transfer_syntax=syntax)  # fmt: skip
    expected = encode_file_meta(made)
    assert file_meta.meta(sop_class, sop_uid, syntax) == expected
    data = b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100"
    part10 = file_meta.part10(data, sop_class, sop_uid, syntax)
    assert part10 == b"\0" * 128 + b"DICM" + expected + data
