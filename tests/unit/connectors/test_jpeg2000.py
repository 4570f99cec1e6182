"""JPEG 2000 files of a legacy store served as DICOM: codestreams out of .j2k and .jp2
files, their image description, and Part 10 files that decode to the very pixels that
were encoded (real pixel data from pydicom's bundled test files)."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from io import BytesIO

import numpy as np
import pytest
from openjpeg.utils import encode_array
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import FileDataset
from pydicom.encaps import generate_frames

from pacsync.connectors.dicom.jpeg2000 import (
    IMPLEMENTATION_CLASS_UID,
    PACSYNC_UID_ROOT,
    ImageDescription,
    codestream,
    encapsulate,
    image_description,
)
from pacsync.domain.imaging import InstanceHeader
from pacsync.errors import InvalidDicom

LOSSLESS, LOSSY = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SIGNATURE = struct.pack(">I4s", 12, b"jP  ") + b"\r\n\x87\n"


def pixels(name: str) -> np.ndarray:
    path = get_testdata_file(name)
    assert path is not None
    return dcmread(path).pixel_array


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    ct = pixels("CT_small.dcm")  # signed 16 bit, 128 × 128
    return {
        "ct signed": (ct.astype(np.int32) - 1024).astype(np.int16),  # Hounsfield-like
        "ct unsigned": ct.astype(np.uint16),
        "mr": pixels("MR_small.dcm"),
        "mono 8": pixels("image_dfl.dcm"),  # 8 bit, 512 × 512
        "rgb": pixels("examples_rgb_color.dcm"),  # 8 bit, 240 × 320 × 3
    }


def encoded(array: np.ndarray, **options: object) -> bytes:
    if array.ndim == 3:
        options.setdefault("photometric_interpretation", 1)
    return bytes(encode_array(array, **options))


def box(kind: bytes, payload: bytes, *, xl: bool = False, to_end: bool = False) -> bytes:
    if to_end:
        return struct.pack(">I4s", 0, kind) + payload
    if xl:
        return struct.pack(">I4sQ", 1, kind, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def jp2(stream: bytes, *, xl: bool = False, to_end: bool = False) -> bytes:
    """A JP2 file around a codestream, box by box (ISO/IEC 15444-1 Annex I)."""
    ftyp = box(b"ftyp", b"jp2 " + b"\x00\x00\x00\x00" + b"jp2 ")
    ihdr = box(b"ihdr", struct.pack(">IIHBBBB", 64, 64, 1, 15, 7, 0, 0))
    colr = box(b"colr", struct.pack(">BBBI", 1, 0, 0, 17))
    return SIGNATURE + ftyp + box(b"jp2h", ihdr + colr) + box(b"jp2c", stream, xl=xl, to_end=to_end)


def main_header(
    *, components: int = 1, ssiz: int = 7, sampling: int = 1, cod: bool = True
) -> bytes:
    """A codestream main header only (SOC, SIZ, COD, SOT): enough for image_description."""
    siz = struct.pack(">HIIIIIIIIH", 0, 320, 240, 0, 0, 320, 240, 0, 0, components)
    siz += bytes([ssiz, sampling, sampling]) * components
    segments = b"\xff\x51" + struct.pack(">H", 2 + len(siz)) + siz
    if cod:
        body = bytes([0, 0, 0, 1, 0, 5, 4, 4, 0, 1])
        segments += b"\xff\x52" + struct.pack(">H", 2 + len(body)) + body
    return b"\xff\x4f" + segments + b"\xff\x90" + struct.pack(">H", 10) + bytes(8)


def header(**changes: object) -> InstanceHeader:
    values: dict[str, object] = {
        "sop_instance_uid": "1.2.826.0.1.3680043.10.1138.1.1.1.1",
        "sop_class_uid": CT_IMAGE,
        "study_instance_uid": "1.2.826.0.1.3680043.10.1138.1.1",
        "series_instance_uid": "1.2.826.0.1.3680043.10.1138.1.1.1",
        "specific_character_set": "ISO_IR 192",
        "patient_name": "DOE^JOHN",
        "patient_id": "P0001",
        "issuer_of_patient_id": "HOSP_A",
        "patient_birth_date": "19500101",
        "patient_sex": "M",
        "study_date": "20190312",
        "study_time": "081530",
        "accession_number": "A00101",
        "study_description": "CT head",
        "referring_physician_name": "WHO^REFERRED",
        "study_id": "1",
        "modality": "CT",
        "series_number": 2,
        "series_description": "axial",
        "body_part_examined": "HEAD",
        "instance_number": 7,
    }
    values.update(changes)
    return InstanceHeader(**values)  # type: ignore[arg-type]


def read(data: bytes) -> FileDataset:
    return dcmread(BytesIO(data))


# -- codestream -------------------------------------------------------------------------------


def test_a_raw_codestream_is_returned_as_it_is(arrays: dict[str, np.ndarray]) -> None:
    stream = encoded(arrays["mr"])
    assert stream.startswith(b"\xff\x4f\xff\x51")
    assert codestream(stream) is stream


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(jp2, id="plain boxes"),
        pytest.param(lambda s: jp2(s, xl=True), id="XLBox length"),
        pytest.param(lambda s: jp2(s, to_end=True), id="length 0 to the end"),
        pytest.param(lambda s: jp2(s) + box(b"uuid", b"\x00" * 20), id="a box after jp2c"),
    ],
)
def test_the_codestream_of_a_jp2_file_is_its_jp2c_box(
    arrays: dict[str, np.ndarray], wrap: Callable[[bytes], bytes]
) -> None:
    stream = encoded(arrays["ct signed"])
    assert codestream(wrap(stream)) == stream


def test_a_jp2_file_made_by_openjpeg_gives_the_codestream_openjpeg_makes(
    arrays: dict[str, np.ndarray],
) -> None:
    for array in (arrays["mr"], arrays["rgb"]):
        assert codestream(encoded(array, codec_format=1)) == encoded(array)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a JPEG 2000 codestream or JP2 file"),
        (b"GIF89a" + bytes(40), "not a JPEG 2000 codestream or JP2 file"),
        (bytes(128) + b"DICM" + bytes(40), "not a JPEG 2000 codestream or JP2 file"),
        (b"\xff\x4f\xff\x90", "not a JPEG 2000 codestream or JP2 file"),
        (SIGNATURE, "without a contiguous codestream (jp2c) box"),
        (SIGNATURE + b"\x00\x00", "truncated in a box header"),
        (SIGNATURE + struct.pack(">I4s", 5, b"ftyp"), "invalid length 5"),
        (SIGNATURE + struct.pack(">I4s", 500, b"jp2c") + bytes(20), "invalid length 500"),
        (SIGNATURE + struct.pack(">I4s", 1, b"jp2c") + b"\x00", "truncated in a box header"),
        (SIGNATURE + box(b"jp2c", b"not a codestream"), "does not hold a JPEG 2000 codestream"),
    ],
    ids=[
        "empty",
        "gif",
        "dicom",
        "soc without siz",
        "signature only",
        "cut box header",
        "box shorter than its header",
        "box past the end",
        "cut XLBox",
        "jp2c of garbage",
    ],
)
def test_anything_else_is_invalid(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidDicom, match=re.escape(reason)) as caught:
        codestream(data)
    assert caught.value.code == "PACS-401"


# -- image description ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("mono 8", {}, (512, 512, 1, 8, 8, 0, "MONOCHROME2")),
        ("ct signed", {"bits_stored": 16}, (128, 128, 1, 16, 16, 1, "MONOCHROME2")),
        ("ct signed", {}, (128, 128, 1, 16, 12, 1, "MONOCHROME2")),
        ("ct unsigned", {}, (128, 128, 1, 16, 12, 0, "MONOCHROME2")),
        ("ct unsigned", {"bits_stored": 16}, (128, 128, 1, 16, 16, 0, "MONOCHROME2")),
        ("rgb", {}, (320, 240, 3, 8, 8, 0, "YBR_RCT")),
        ("rgb", {"use_mct": False}, (320, 240, 3, 8, 8, 0, "RGB")),
    ],
)
def test_image_description_from_the_siz_and_cod_segments(
    arrays: dict[str, np.ndarray], name: str, options: dict[str, object], expected: tuple[object]
) -> None:
    image = image_description(encoded(arrays[name], **options))
    assert (
        image.columns,
        image.rows,
        image.samples_per_pixel,
        image.bits_allocated,
        image.bits_stored,
        image.pixel_representation,
        image.photometric_interpretation,
    ) == expected
    assert image.reversible
    assert image.high_bit == image.bits_stored - 1


def test_a_lossy_codestream_is_irreversible_and_its_colour_transform_is_ict(
    arrays: dict[str, np.ndarray],
) -> None:
    image = image_description(encoded(arrays["rgb"], compression_ratios=[10]))
    assert (image.reversible, image.photometric_interpretation) == (False, "YBR_ICT")


def test_image_description_of_a_bare_main_header() -> None:
    assert image_description(main_header(ssiz=0x8B)) == ImageDescription(
        columns=320,
        rows=240,
        samples_per_pixel=1,
        bits_allocated=16,
        bits_stored=12,
        pixel_representation=1,
        photometric_interpretation="MONOCHROME2",
        reversible=True,
    )
    assert image_description(main_header(ssiz=0x1F)).bits_allocated == 32


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"\xff\x4f\xff\x51\x00", "no SIZ marker segment"),
        (main_header()[:30], "no SIZ marker segment"),
        (main_header(components=4), "4 components"),
        (main_header(components=2), "2 components"),
        (main_header(sampling=2), "sub-sampled"),
        (main_header(cod=False), "without a COD marker segment"),
        (main_header()[:44], "truncated or inconsistent"),
        (main_header()[:52], "without a COD marker segment"),
    ],
    ids=[
        "cut SIZ",
        "short SIZ",
        "4 components",
        "2 components",
        "sub-sampled",
        "no COD",
        "SIZ cut",
        "COD cut",
    ],
)
def test_unusable_codestreams_are_invalid(stream: bytes, reason: str) -> None:
    with pytest.raises(InvalidDicom, match=reason):
        image_description(stream)


# -- encapsulate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("ct signed", {}),
        ("ct signed", {"bits_stored": 16}),
        ("ct unsigned", {}),
        ("mr", {}),
        ("mono 8", {}),
        ("rgb", {}),
        ("rgb", {"use_mct": False}),
    ],
)
def test_the_dicom_file_decodes_to_the_encoded_pixels(
    arrays: dict[str, np.ndarray], name: str, options: dict[str, object]
) -> None:
    array = arrays[name]
    ds = read(encapsulate(header(), encoded(array, **options)))
    decoded = ds.pixel_array
    assert decoded.dtype == array.dtype
    assert np.array_equal(decoded, array)


def test_a_jp2_file_becomes_dicom_through_its_codestream(arrays: dict[str, np.ndarray]) -> None:
    array = arrays["ct signed"]
    ds = read(encapsulate(header(), codestream(jp2(encoded(array), xl=True))))
    assert np.array_equal(ds.pixel_array, array)


def test_the_file_meta_and_the_header_attributes(arrays: dict[str, np.ndarray]) -> None:
    stream = encoded(arrays["mr"])
    data = encapsulate(header(), stream)
    assert data[128:132] == b"DICM"
    ds = read(data)
    meta = ds.file_meta
    assert meta.TransferSyntaxUID == LOSSLESS
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID == CT_IMAGE
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == header().sop_instance_uid
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert IMPLEMENTATION_CLASS_UID.startswith(PACSYNC_UID_ROOT + ".")
    assert PACSYNC_UID_ROOT.startswith("2.25.")
    assert len(IMPLEMENTATION_CLASS_UID) <= 64
    assert meta.FileMetaInformationVersion == b"\x00\x01"
    expected = header()
    assert (ds.PatientName, ds.PatientID, ds.IssuerOfPatientID) == ("DOE^JOHN", "P0001", "HOSP_A")
    assert (ds.PatientBirthDate, ds.PatientSex) == ("19500101", "M")
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID) == (
        expected.study_instance_uid,
        expected.series_instance_uid,
    )
    assert (ds.StudyDate, ds.StudyTime, ds.AccessionNumber) == ("20190312", "081530", "A00101")
    assert (ds.StudyDescription, ds.ReferringPhysicianName, ds.StudyID) == (
        "CT head",
        "WHO^REFERRED",
        "1",
    )
    assert (ds.Modality, ds.SeriesNumber, ds.SeriesDescription, ds.BodyPartExamined) == (
        "CT",
        2,
        "axial",
        "HEAD",
    )
    assert ds.InstanceNumber == 7
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel) == (64, 64, 1)
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 13, 12, 1)
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert "LossyImageCompression" not in ds
    assert ds["PixelData"].is_undefined_length
    frames = list(generate_frames(ds.PixelData, number_of_frames=1))
    assert frames[0].rstrip(b"\x00") == stream.rstrip(b"\x00")


def test_the_codestream_is_one_fragment_after_a_basic_offset_table(
    arrays: dict[str, np.ndarray],
) -> None:
    stream = encoded(arrays["mr"])
    pixel_data = read(encapsulate(header(), stream)).PixelData
    item = b"\xfe\xff\x00\xe0"
    assert pixel_data[:12] == item + struct.pack("<I", 4) + struct.pack("<I", 0)
    length = struct.unpack_from("<I", pixel_data, 16)[0]
    assert pixel_data[12:16] == item
    assert pixel_data[20 : 20 + len(stream)] == stream
    assert length == len(stream) + len(stream) % 2


def test_without_a_sop_class_it_is_secondary_capture(arrays: dict[str, np.ndarray]) -> None:
    ds = read(encapsulate(header(sop_class_uid=None, modality=None), encoded(arrays["mono 8"])))
    assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == SECONDARY_CAPTURE
    assert (ds.ConversionType, ds.Modality) == ("WSD", "OT")


def test_unknown_type_2_attributes_are_present_and_empty(arrays: dict[str, np.ndarray]) -> None:
    bare = InstanceHeader(
        sop_instance_uid="1.2.3.4.5",
        study_instance_uid="1.2.3.4",
        series_instance_uid="1.2.3.4.6",
    )
    ds = read(encapsulate(bare, encoded(arrays["mr"])))
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate"):
        assert keyword in ds
        assert ds[keyword].value in ("", None)
    for keyword in ("StudyDescription", "IssuerOfPatientID", "SpecificCharacterSet"):
        assert keyword not in ds


def test_a_lossy_codestream_is_marked_lossy(arrays: dict[str, np.ndarray]) -> None:
    array = arrays["rgb"]
    ds = read(encapsulate(header(), encoded(array, compression_ratios=[8])))
    assert ds.file_meta.TransferSyntaxUID == LOSSY
    assert (ds.LossyImageCompression, ds.LossyImageCompressionMethod) == ("01", "ISO_15444_1")
    assert ds.PhotometricInterpretation == "YBR_ICT"
    assert ds.pixel_array.shape == array.shape


@pytest.mark.parametrize(
    ("charset", "name", "written"),
    [
        ("ISO_IR 100", "Müller^Jürgen", "ISO_IR 100"),
        ("ISO_IR 100", "Wałęsa^Łukasz", "ISO_IR 192"),  # not Latin-1: written as UTF-8
        ("ISO_IR 192", "Müller^Jürgen", "ISO_IR 192"),
        (None, "Müller^Jürgen", "ISO_IR 192"),
    ],
)
def test_names_keep_their_characters(
    arrays: dict[str, np.ndarray], charset: str | None, name: str, written: str
) -> None:
    data = encapsulate(
        header(specific_character_set=charset, patient_name=name), encoded(arrays["mr"])
    )
    ds = read(data)
    assert ds.SpecificCharacterSet == written
    assert ds.PatientName == name
    if written == "ISO_IR 100":
        assert name.encode("latin-1") in data


def test_legacy_values_are_fitted_to_their_value_representations(
    arrays: dict[str, np.ndarray],
) -> None:
    legacy = header(
        study_description="x" * 80,  # LO holds 64
        modality="ct",
        patient_sex="f",
        study_date="12/03/2019",  # not a DICOM date: left empty
    )
    ds = read(encapsulate(legacy, encoded(arrays["mr"])))
    assert ds.StudyDescription == "x" * 64
    assert (ds.Modality, ds.PatientSex) == ("CT", "F")
    assert ds.StudyDate == ""


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"study_instance_uid": None}, "no StudyInstanceUID"),
        ({"series_instance_uid": ""}, "no SeriesInstanceUID"),
        ({"sop_instance_uid": "1.2.abc"}, "SOPInstanceUID '1.2.abc' is not a UID"),
        ({"sop_class_uid": "CT IMAGE"}, "SOPClassUID 'CT IMAGE' is not a UID"),
    ],
)
def test_unusable_uids_are_invalid(
    arrays: dict[str, np.ndarray], changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidDicom, match=re.escape(reason)):
        encapsulate(header(**changes), encoded(arrays["mr"]))


def test_encapsulating_garbage_is_invalid() -> None:
    with pytest.raises(InvalidDicom):
        encapsulate(header(), b"\x00" * 64)
