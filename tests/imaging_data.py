"""Realistic DICOM files for tests and benchmarks, written with pydicom.

``realistic_ct`` writes a Part 10 file (explicit VR little endian) shaped like a
scanner's CT or MR image: about 70 public attributes, about 180 private elements in
GE- and Siemens-style private groups (0009, 0019, 0021, 0023, 0027, 0029, 0043,
0045) with creators, sequences (one of undefined length with an undefined-length
item, one private), and 16-bit pixel data.

Writing is fast: the constant part of the dataset is encoded once per kind of file
(modality, character set, pixels, size) and each file only encodes the elements that
change (patient, study, series, instance) and its file meta information.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydicom import dcmread, dcmwrite
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

# the elements each file sets itself, in tag order
_VARYING = (
    0x00080018,  # SOP Instance UID
    0x00080020,  # Study Date
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x0020000D,  # Study Instance UID
    0x0020000E,  # Series Instance UID
    0x00200013,  # Instance Number
    0x00201041,  # Slice Location
)

# (group, creator, number of elements) of the private blocks
_PRIVATE_BLOCKS = (
    (0x0009, "GEMS_IDEN_01", 24),
    (0x0019, "GEMS_ACQU_01", 70),
    (0x0021, "GEMS_RELA_01", 20),
    (0x0023, "GEMS_STDY_01", 6),
    (0x0027, "GEMS_IMAG_01", 22),
    (0x0029, "SIEMENS CSA HEADER", 4),
    (0x0043, "GEMS_PARM_01", 30),
    (0x0045, "GEMS_HELIOS_01", 8),
)


def realistic_ct(
    path: Path,
    *,
    patient_id: str,
    patient_name: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    instance_number: int,
    modality: str = "CT",
    charset: str | None = None,
    study_date: str = "20240105",
    pixels: bool = True,
    rows: int = 512,
    columns: int = 512,
) -> None:
    """Write one image of a realistic series to ``path``.

    ``charset`` is the (0008,0005) Specific Character Set value, multiple values
    separated by a backslash (``"ISO 2022 IR 13\\ISO 2022 IR 87"``); ``None`` leaves
    the element out (the default repertoire).  ``pixels=False`` writes no pixel data."""
    template = _template(modality, charset, pixels, rows, columns)
    varying = {
        0x00080018: DataElement(0x00080018, "UI", sop_uid),
        0x00080020: DataElement(0x00080020, "DA", study_date),
        0x00100010: DataElement(0x00100010, "PN", patient_name),
        0x00100020: DataElement(0x00100020, "LO", patient_id),
        0x0020000D: DataElement(0x0020000D, "UI", study_uid),
        0x0020000E: DataElement(0x0020000E, "UI", series_uid),
        0x00200013: DataElement(0x00200013, "IS", str(instance_number)),
        0x00201041: DataElement(0x00201041, "DS", f"{-1.25 * instance_number:.2f}"),
    }
    parts = [template.preamble, _file_meta(template.sop_class_uid, sop_uid)]
    for segment, tag in zip(template.segments, _VARYING, strict=False):
        parts.append(segment)
        parts.append(_encode(varying[tag], template.encodings))
    parts.append(template.segments[-1])
    path.write_bytes(b"".join(parts))


def transcode(source: Path, target: Path, transfer_syntax: str) -> Path:
    """``source`` rewritten to ``target`` in another transfer syntax: implicit VR little
    endian, explicit VR big endian, deflated, or any explicit VR little endian one (the
    pixel data is copied as it is, so only the header is meaningful for a compressed
    syntax)."""
    ds = dcmread(source)
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    implicit = transfer_syntax == ImplicitVRLittleEndian
    little_endian = transfer_syntax != ExplicitVRBigEndian
    dcmwrite(target, ds, implicit_vr=implicit, little_endian=little_endian, force_encoding=True)
    return target


@dataclass(frozen=True)
class _Template:
    preamble: bytes
    sop_class_uid: str
    encodings: list[str]
    segments: tuple[bytes, ...]  # the encoded elements between the varying ones


@lru_cache(maxsize=32)
def _template(
    modality: str, charset: str | None, pixels: bool, rows: int, columns: int
) -> _Template:
    ds = _constant_dataset(modality, charset, pixels, rows, columns)
    encodings = charset.split("\\") if charset else ["ISO_IR 6"]
    segments: list[bytes] = []
    current: list[bytes] = []
    pending = list(_VARYING)
    for tag in sorted(ds.keys()):
        while pending and pending[0] < tag:
            segments.append(b"".join(current))
            current = []
            pending.pop(0)
        current.append(_encode(ds[tag], encodings))
    while pending:
        segments.append(b"".join(current))
        current = []
        pending.pop(0)
    segments.append(b"".join(current))
    return _Template(
        preamble=b"\0" * 128 + b"DICM",
        sop_class_uid=ds.SOPClassUID,
        encodings=encodings,
        segments=tuple(segments),
    )


def _encode(element: DataElement, encodings: list[str]) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = False
    write_data_element(out, element, encodings)
    return bytes(out.getvalue())


def _file_meta(sop_class_uid: str, sop_uid: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "PACSYNC_TEST"
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = False
    write_file_meta_info(out, meta, enforce_standard=True)
    return bytes(out.getvalue())


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _constant_dataset(
    modality: str, charset: str | None, pixels: bool, rows: int, columns: int
) -> Dataset:
    ds = Dataset()
    if charset:
        parts = charset.split("\\")
        ds.SpecificCharacterSet = parts if len(parts) > 1 else parts[0]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = "20240105"
    ds.InstanceCreationTime = "101500"
    ds.SOPClassUID = SOP_CLASSES.get(modality, SECONDARY_CAPTURE)
    ds.SeriesDate = "20240105"
    ds.AcquisitionDate = "20240105"
    ds.ContentDate = "20240105"
    ds.StudyTime = "101010"
    ds.SeriesTime = "101200"
    ds.AcquisitionTime = "101230.500000"
    ds.ContentTime = "101231"
    ds.AccessionNumber = "A20240105001"
    ds.Modality = modality
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.InstitutionName = "Example Hospital"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StationName = "CT01"
    ds.ProcedureCodeSequence = Sequence(
        [_code_item("CTCHAB", "L", "CT Chest Abdomen with contrast")]
    )
    ds.StudyDescription = "CT Chest Abdomen"
    ds.SeriesDescription = "Axial 1.25mm"
    ds.ManufacturerModelName = "Revolution CT"
    referenced = Sequence()
    for number in range(2):
        item = Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{number + 1}"
        item.is_undefined_length_sequence_item = number == 1
        referenced.append(item)
    ds.ReferencedImageSequence = referenced
    ds["ReferencedImageSequence"].is_undefined_length = True
    ds.DerivationCodeSequence = Sequence([_code_item("113076", "DCM", "Segmentation")])
    ds.IssuerOfPatientID = "HOSP"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.PatientAge = "054Y"
    ds.PatientWeight = "80"
    ds.BodyPartExamined = "CHEST"
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = "1.25"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.SoftwareVersions = "revo_ct_22mw.40"
    ds.ReconstructionDiameter = "360"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "160"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = "250"
    ds.Exposure = "125"
    ds.FilterType = "BODY FILTER"
    ds.FocalSpots = "1.2"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "FFS"
    ds.StudyID = "4711"
    ds.SeriesNumber = "3"
    ds.AcquisitionNumber = "1"
    ds.ImagePositionPatient = ["-180", "-180", "-100"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.99"
    ds.PositionReferenceIndicator = "SN"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = ["0.703125", "0.703125"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.RequestAttributesSequence = Sequence([_code_item("RP1", "99LOCAL", "Requested")])
    ds.PerformedProcedureStepStartDate = "20240105"
    ds.PerformedProcedureStepID = "PPS1"
    _add_private_blocks(ds)
    if pixels:
        image = np.random.default_rng(7).integers(-1024, 3000, (rows, columns), np.int16)
        ds.PixelData = image.tobytes()
        ds["PixelData"].VR = "OW"
    return ds


def _add_private_blocks(ds: Dataset) -> None:
    """The private elements of a GE/Siemens scanner: numbers, strings, blobs."""
    noise = random.Random(42)
    kinds = ("DS", "LO", "SS", "SL", "FL", "SH", "IS", "FD", "US", "OB")
    for group, creator, count in _PRIVATE_BLOCKS:
        block = ds.private_block(group, creator, create=True)
        for offset in range(count):
            kind = kinds[(offset + group) % len(kinds)]
            if group == 0x0029:
                block.add_new(0x10 + offset, "OB", noise.randbytes(6000 + 100 * offset))
            elif group == 0x0019 and offset == 5:
                item = Dataset()
                item.private_block(group, creator, create=True).add_new(0x10, "LO", "ACQ")
                block.add_new(0x10 + offset, "SQ", Sequence([item]))
                ds[block.get_tag(0x10 + offset)].is_undefined_length = True
            else:
                block.add_new(0x10 + offset, kind, _private_value(kind, noise))


def _private_value(kind: str, noise: random.Random) -> object:
    match kind:
        case "DS":
            return f"{noise.uniform(-500, 500):.4f}"
        case "IS":
            return str(noise.randint(0, 5000))
        case "LO" | "SH":
            return "".join(noise.choices("ABCDEFGHIJKLMNOP0123456789", k=noise.randint(4, 14)))
        case "SS":
            return noise.randint(-3000, 3000)
        case "US":
            return noise.randint(0, 60000)
        case "SL":
            return noise.randint(-100000, 100000)
        case "FL" | "FD":
            return noise.uniform(-1000, 1000)
        case _:
            return noise.randbytes(noise.randint(1, 40) * 2)
