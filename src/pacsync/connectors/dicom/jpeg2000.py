"""JPEG 2000 images of a legacy store as DICOM: the codestream out of a .j2k or .jp2
file, its image description from the SIZ and COD marker segments (ISO/IEC 15444-1
Annex A), and a DICOM Part 10 file that encapsulates it unchanged (PS3.5 §8.2.4, A.4).

No pixel is decoded or re-encoded: the codestream goes into the file as it was stored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from io import BytesIO

from pydicom import config as pydicom_config
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate as encapsulate_frames
from pydicom.filewriter import dcmwrite
from pydicom.uid import JPEG2000, UID, JPEG2000Lossless, SecondaryCaptureImageStorage
from pydicom.valuerep import validate_value

from pacsync.domain.imaging import InstanceHeader
from pacsync.errors import InvalidDicom

#: The UID root of pacsync (a UUID-derived ``2.25`` UID, made once); UIDs pacsync
#: issues are this root followed by further components.
PACSYNC_UID_ROOT = "2.25.177041458885290543228623670350405670269"
IMPLEMENTATION_CLASS_UID = f"{PACSYNC_UID_ROOT}.1"
IMPLEMENTATION_VERSION_NAME = "PACSYNC_0_1"

SOC = b"\xff\x4f"  # start of codestream
SIZ = b"\xff\x51"
_COD = 0xFF52
_SOT = 0xFF90  # the first tile-part ends the main header
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


def codestream(data: bytes) -> bytes:
    """The JPEG 2000 codestream of a raw codestream (.j2k, .j2c: returned as is) or of a
    JP2 file (the content of its ``jp2c`` box).  InvalidDicom for anything else."""
    if data.startswith(SOC + SIZ):
        return data
    if not data.startswith(JP2_SIGNATURE):
        raise InvalidDicom("not a JPEG 2000 codestream or JP2 file")
    offset = 0
    while offset < len(data):
        if len(data) - offset < 8:
            raise InvalidDicom(f"JP2 file truncated in a box header at byte {offset}")
        length, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if length == 1:  # XLBox: the real length in the next 8 bytes
            if len(data) - offset < 16:
                raise InvalidDicom(f"JP2 file truncated in a box header at byte {offset}")
            (length,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif length == 0:  # the last box: up to the end of the file
            length = len(data) - offset
        if length < header or offset + length > len(data):
            raise InvalidDicom(f"JP2 box {kind!r} at byte {offset} has an invalid length {length}")
        if kind == b"jp2c":
            content = data[offset + header : offset + length]
            if not content.startswith(SOC + SIZ):
                raise InvalidDicom("the JP2 file's jp2c box does not hold a JPEG 2000 codestream")
            return content
        offset += length
    raise InvalidDicom("JP2 file without a contiguous codestream (jp2c) box")


@dataclass(frozen=True, slots=True)
class ImageDescription:
    """The DICOM Image Pixel attributes of one JPEG 2000 codestream."""

    columns: int
    rows: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int  # 0 unsigned, 1 two's complement
    photometric_interpretation: str
    reversible: bool  # 5-3 wavelet: lossless unless layers were cut

    @property
    def high_bit(self) -> int:
        return self.bits_stored - 1


def image_description(stream: bytes) -> ImageDescription:
    """Rows, columns, samples, bit depths and photometric interpretation from the SIZ and
    COD marker segments of a codestream.

    Three components are ``YBR_RCT`` when the reversible multiple component transformation
    is on, ``YBR_ICT`` for the irreversible one, ``RGB`` without one (PS3.5 §8.2.4)."""
    if not stream.startswith(SOC + SIZ) or len(stream) < 4 + 38:
        raise InvalidDicom("not a JPEG 2000 codestream (no SIZ marker segment after SOC)")
    (lsiz,) = struct.unpack_from(">H", stream, 4)
    xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">4I", stream, 8)
    (csiz,) = struct.unpack_from(">H", stream, 40)
    if csiz < 1 or lsiz != 38 + 3 * csiz or len(stream) < 4 + lsiz:
        raise InvalidDicom("JPEG 2000 SIZ marker segment is truncated or inconsistent")
    components = [stream[42 + 3 * i : 45 + 3 * i] for i in range(csiz)]
    if any(c != components[0] for c in components):
        raise InvalidDicom("JPEG 2000 components differ in precision or sub-sampling")
    ssiz, xrsiz, yrsiz = components[0]
    if (xrsiz, yrsiz) != (1, 1):
        raise InvalidDicom("sub-sampled JPEG 2000 components are not supported")
    if csiz not in (1, 3):
        raise InvalidDicom(f"JPEG 2000 codestream with {csiz} components (1 or 3 are supported)")
    bits_stored = (ssiz & 0x7F) + 1
    mct, reversible = _coding_style(stream, 4 + lsiz)
    if csiz == 1:
        photometric = "MONOCHROME2"
    elif mct:
        photometric = "YBR_RCT" if reversible else "YBR_ICT"
    else:
        photometric = "RGB"
    return ImageDescription(
        columns=xsiz - xosiz,
        rows=ysiz - yosiz,
        samples_per_pixel=csiz,
        bits_allocated=next(b for b in (8, 16, 32, 40) if bits_stored <= b),
        bits_stored=bits_stored,
        pixel_representation=1 if ssiz & 0x80 else 0,
        photometric_interpretation=photometric,
        reversible=reversible,
    )


def _coding_style(stream: bytes, offset: int) -> tuple[bool, bool]:
    """(multiple component transformation on, reversible wavelet) from the COD segment."""
    while offset + 4 <= len(stream):
        marker, length = struct.unpack_from(">HH", stream, offset)
        if marker == _SOT:
            break
        if marker == _COD:
            if length < 12 or offset + 2 + length > len(stream):
                break
            return stream[offset + 8] == 1, stream[offset + 13] == 1
        if marker >> 8 != 0xFF or length < 2:
            break
        offset += 2 + length
    raise InvalidDicom("JPEG 2000 main header without a COD marker segment")


# (keyword, VR, InstanceHeader attribute); every one is written, empty when unknown
_ATTRIBUTES = (
    ("SpecificCharacterSet", "CS", "specific_character_set"),
    ("StudyDate", "DA", "study_date"),
    ("StudyTime", "TM", "study_time"),
    ("AccessionNumber", "SH", "accession_number"),
    ("Modality", "CS", "modality"),
    ("ReferringPhysicianName", "PN", "referring_physician_name"),
    ("StudyDescription", "LO", "study_description"),
    ("SeriesDescription", "LO", "series_description"),
    ("PatientName", "PN", "patient_name"),
    ("PatientID", "LO", "patient_id"),
    ("IssuerOfPatientID", "LO", "issuer_of_patient_id"),
    ("PatientBirthDate", "DA", "patient_birth_date"),
    ("PatientSex", "CS", "patient_sex"),
    ("BodyPartExamined", "CS", "body_part_examined"),
    ("StudyID", "SH", "study_id"),
    ("SeriesNumber", "IS", "series_number"),
    ("InstanceNumber", "IS", "instance_number"),
)
_OPTIONAL = frozenset(  # type 3: left out when unknown; the others are type 1 or 2
    {
        "StudyDescription",
        "SeriesDescription",
        "IssuerOfPatientID",
        "BodyPartExamined",
        "SpecificCharacterSet",
    }
)
_MAX_LENGTH = {"CS": 16, "SH": 16, "LO": 64, "PN": 64}


def encapsulate(header: InstanceHeader, stream: bytes) -> bytes:
    """A DICOM Part 10 file of one image: the header's patient, study, series and
    instance attributes, the Image Pixel module of the codestream, and the codestream as
    the single fragment of the single frame (with a basic offset table).

    The transfer syntax is JPEG 2000 Lossless for a reversible codestream, JPEG 2000
    (marked lossy) otherwise; the SOP class is the header's or Secondary Capture.
    InvalidDicom when the codestream or one of the UIDs is unusable."""
    image = image_description(stream)
    sop_class = header.sop_class_uid or SecondaryCaptureImageStorage
    syntax = JPEG2000Lossless if image.reversible else JPEG2000
    uids = {
        "SOPClassUID": sop_class,
        "SOPInstanceUID": header.sop_instance_uid,
        "StudyInstanceUID": header.study_instance_uid,
        "SeriesInstanceUID": header.series_instance_uid,
    }
    for keyword, uid in uids.items():
        _check_uid(keyword, uid, header.sop_instance_uid)

    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(header.sop_instance_uid)
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta

    values = {keyword: _fitted(vr, getattr(header, name)) for keyword, vr, name in _ATTRIBUTES}
    values["SpecificCharacterSet"] = _character_set(values)
    values["Modality"] = values["Modality"] or "OT"
    for keyword, uid in uids.items():
        setattr(ds, keyword, uid)
    for keyword, value in sorted(values.items()):
        if value is not None or keyword not in _OPTIONAL:
            setattr(ds, keyword, value)
    if sop_class == SecondaryCaptureImageStorage:
        ds.ConversionType = "WSD"
    if not image.reversible:
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_15444_1"

    ds.SamplesPerPixel = image.samples_per_pixel
    ds.PhotometricInterpretation = image.photometric_interpretation
    if image.samples_per_pixel > 1:
        ds.PlanarConfiguration = 0
    ds.Rows = image.rows
    ds.Columns = image.columns
    ds.BitsAllocated = image.bits_allocated
    ds.BitsStored = image.bits_stored
    ds.HighBit = image.high_bit
    ds.PixelRepresentation = image.pixel_representation
    ds.PixelData = encapsulate_frames([stream])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True

    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _check_uid(keyword: str, uid: str | None, sop_instance_uid: str) -> None:
    if not uid:
        raise InvalidDicom(f"image {sop_instance_uid}: no {keyword}")
    try:
        validate_value("UI", uid, pydicom_config.RAISE)
    except ValueError as exc:
        raise InvalidDicom(f"image {sop_instance_uid}: {keyword} {uid!r} is not a UID") from exc


def _fitted(vr: str, value: str | int | None) -> str | int | None:
    """A legacy value as the VR allows it: code strings upper-cased, over-long text cut to
    the VR's length, anything else invalid (a date as ``12/03/2019``) left out."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    if vr == "CS":
        value = value.upper()
    if vr in _MAX_LENGTH:
        value = value[: _MAX_LENGTH[vr]]
    try:
        validate_value(vr, value, pydicom_config.RAISE)
    except ValueError:
        return None
    return value


def _character_set(values: dict[str, str | int | None]) -> str | None:
    """The header's Specific Character Set when it can encode every text value, else
    ISO_IR 192 (UTF-8)."""
    declared = values["SpecificCharacterSet"]
    texts = [v for v in values.values() if isinstance(v, str)]
    if all(text.isascii() for text in texts):
        return str(declared) if declared else None
    if isinstance(declared, str):
        try:
            (codec,) = convert_encodings([declared])
            for text in texts:
                text.encode(codec)
        except (ValueError, LookupError, UnicodeEncodeError):
            return "ISO_IR 192"
        return declared
    return "ISO_IR 192"
