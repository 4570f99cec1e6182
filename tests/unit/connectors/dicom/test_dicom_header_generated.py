"""read_header against pydicom on generated files: realistic CT and MR images in each
character set and transfer syntax, and hand-encoded datasets holding one structure or
one value each (sequences of undefined length, private and UN elements, fragments,
values in unusual VRs, numbers pydicom parses leniently, files pydicom is left to)."""

from __future__ import annotations

import contextlib
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import pydicom
import pytest
from dicom_encoding import (
    DEFLATED,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    UNDEFINED,
    element,
    fragments,
    item,
    minimal,
    padded,
    part10,
    sequence,
    uid,
)
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from imaging_data import realistic_ct, transcode
from pacsync.connectors.dicom.header import header_from_dataset, read_header
from pacsync.domain.imaging import InstanceHeader
from pacsync.errors import InvalidDicom


def _expecting(warning: str | None) -> contextlib.AbstractContextManager[object]:
    if warning is None:
        return contextlib.nullcontext()
    return pytest.warns(UserWarning, match=warning)


def agreed(
    path: Path, *, warns: str | None = None, reader_warns: str | None = None
) -> InstanceHeader:
    """read_header of ``path``, asserted equal to pydicom's; ``warns`` is what pydicom
    warns about reading it, ``reader_warns`` what read_header does (through pydicom)."""
    with _expecting(warns):
        reference = header_from_dataset(pydicom.dcmread(path, stop_before_pixels=True))
    with _expecting(reader_warns):
        got = read_header(path)
    assert got.as_dict() == reference.as_dict()
    return got


def refused(path: Path, *, warns: str | None = None) -> str:
    """The reason of read_header's InvalidDicom, asserted to be pydicom's verdict too."""
    with _expecting(warns), pytest.raises(InvalidDicom) as reference:
        header_from_dataset(pydicom.dcmread(path, stop_before_pixels=True))
    with _expecting(warns), pytest.raises(InvalidDicom) as got:
        read_header(path)
    assert got.value.message == reference.value.message
    return got.value.message


def _ct(path: Path, **changes: object) -> Path:
    arguments: dict[str, object] = {
        "patient_id": "ID-1",
        "patient_name": "Doe^John",
        "study_uid": "1.2.826.0.1.3680043.8.498.1",
        "series_uid": "1.2.826.0.1.3680043.8.498.1.1",
        "sop_uid": "1.2.826.0.1.3680043.8.498.1.1.1",
        "instance_number": 7,
        "rows": 64,
        "columns": 64,
    }
    arguments.update(changes)
    realistic_ct(path, **arguments)  # type: ignore[arg-type]
    return path


# --- realistic images -------------------------------------------------------------

NAMES = [  # (Specific Character Set, patient name); from PS3.5 Annex H-K and pydicom's files
    (None, "Doe^John"),
    ("ISO_IR 100", "Müller^Jürgen"),
    ("ISO_IR 192", "Ærøskøbing^王"),
    ("ISO 2022 IR 13\\ISO 2022 IR 87", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"),
    ("\\ISO 2022 IR 87", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
    ("ISO 2022 IR 6\\ISO 2022 IR 87", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
    ("\\ISO 2022 IR 149", "Hong^Gildong=洪^吉洞=홍^길동"),
    ("GB18030", "Wang^XiaoDong=王^小东"),
    ("ISO 2022 IR 58", "Zhang^SanFeng=张^三丰"),
    ("ISO_IR 144", "Люкceмбypг"),
    ("ISO_IR 126", "Διονυσιος"),
    ("ISO_IR 127", "قباني^لنزار"),
    ("ISO_IR 138", "שרון^דבורה"),
    ("ISO_IR 166", "ประเทศไทย^ดีมาก"),
    ("ISO_IR 13", "ﾔﾏﾀﾞ^ﾀﾛｳ"),
]


@pytest.mark.parametrize(("charset", "name"), NAMES, ids=[c or "default" for c, _ in NAMES])
def test_names_in_each_character_set(tmp_path: Path, charset: str | None, name: str) -> None:
    header = agreed(_ct(tmp_path / "ct.dcm", charset=charset, patient_name=name))
    assert header.patient_name == name
    assert header.specific_character_set == charset


def test_a_realistic_ct_image(tmp_path: Path) -> None:
    path = _ct(tmp_path / "ct.dcm", rows=512, columns=512, patient_name="Müller^Jürgen")
    path2 = _ct(tmp_path / "ct.dcm", rows=512, columns=512, patient_name="Müller^Jürgen")
    header = agreed(path2)
    assert path.stat().st_size > 512 * 512 * 2
    assert header == InstanceHeader(
        sop_instance_uid="1.2.826.0.1.3680043.8.498.1.1.1",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        transfer_syntax_uid=EXPLICIT_LE,
        study_instance_uid="1.2.826.0.1.3680043.8.498.1",
        series_instance_uid="1.2.826.0.1.3680043.8.498.1.1",
        patient_name="Müller^Jürgen",
        patient_id="ID-1",
        issuer_of_patient_id="HOSP",
        patient_birth_date="19700101",
        patient_sex="M",
        study_date="20240105",
        study_time="101010",
        accession_number="A20240105001",
        study_description="CT Chest Abdomen",
        referring_physician_name="Referrer^Rita",
        study_id="4711",
        modality="CT",
        series_number=3,
        series_description="Axial 1.25mm",
        body_part_examined="CHEST",
        series_date="20240105",
        series_time="101200",
        instance_number=7,
        rows=512,
        columns=512,
    )


def test_an_mr_image_without_pixel_data(tmp_path: Path) -> None:
    header = agreed(_ct(tmp_path / "mr.dcm", modality="MR", pixels=False))
    assert (header.modality, header.sop_class_uid) == ("MR", "1.2.840.10008.5.1.4.1.1.4")


@pytest.mark.parametrize(
    "transfer_syntax",
    [ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian],
    ids=["implicit-VR-LE", "explicit-VR-BE", "deflated"],
)
@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO 2022 IR 13\\ISO 2022 IR 87"])
def test_realistic_images_in_each_transfer_syntax(
    tmp_path: Path, transfer_syntax: str, charset: str
) -> None:
    name = "Müller^Jürgen" if charset == "ISO_IR 100" else "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"
    source = _ct(tmp_path / "source.dcm", charset=charset, patient_name=name)
    header = agreed(transcode(source, tmp_path / "target.dcm", transfer_syntax))
    assert (header.transfer_syntax_uid, header.patient_name) == (transfer_syntax, name)


def test_an_encapsulated_transfer_syntax_is_explicit_vr_little_endian(tmp_path: Path) -> None:
    source = _ct(tmp_path / "ct.dcm", pixels=False)
    jpeg = transcode(source, tmp_path / "jpeg.dcm", "1.2.840.10008.1.2.4.50")
    assert agreed(jpeg).transfer_syntax_uid == "1.2.840.10008.1.2.4.50"


def test_text_in_code_extensions(tmp_path: Path) -> None:
    path = _ct(tmp_path / "ct.dcm", charset="ISO 2022 IR 13\\ISO 2022 IR 87")
    ds = pydicom.dcmread(path)
    ds.StudyDescription = "ｹﾝｻ 検査"
    ds.ReferringPhysicianName = "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎"
    ds.InstitutionName = "病院"
    ds.save_as(path)
    header = agreed(path)
    assert (header.study_description, header.referring_physician_name) == (
        "ｹﾝｻ 検査",
        "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎",
    )


# --- structures ---------------------------------------------------------------------

NAME = element(0x00100010, "PN", padded("Doe^Jane"))
NAME_IMPLICIT = element(0x00100010, None, padded("Doe^Jane"))


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "crafted.dcm"
    path.write_bytes(data)
    return path


def _nested(depth: int, *, undefined: bool = True) -> bytes:
    inner = element(0x00080100, "SH", padded("CODE"))
    for level in range(depth):
        inner = sequence(0x0040A730, [item(inner, undefined=undefined)], undefined=level % 2 == 0)
    return inner


def test_nested_sequences_of_undefined_length_are_skipped(tmp_path: Path) -> None:
    private = sequence(0x00091010, [item(_nested(6)), item(_nested(3), undefined=False)])
    data = minimal(element(0x00090010, "LO", padded("ACME")) + private + NAME)
    assert agreed(_write(tmp_path, part10(data))).patient_name == "Doe^Jane"


def test_un_of_undefined_length_is_a_sequence_of_implicit_vr_items(tmp_path: Path) -> None:
    implicit_items = [
        item(element(0x00091011, None, b"AB") + sequence(0x00091012, [item(b"")], vr=None)),
        item(element(0x00091011, None, b"CD"), undefined=False),
    ]
    data = minimal(element(0x00090010, "LO", padded("ACME")))
    data += sequence(0x00091010, implicit_items, vr="UN") + NAME
    assert agreed(_write(tmp_path, part10(data))).patient_name == "Doe^Jane"


def test_items_in_implicit_vr_within_an_explicit_vr_dataset(tmp_path: Path) -> None:
    referenced = item(element(0x00081150, None, uid("1.2")) + element(0x00081155, None, uid("1.3")))
    data = minimal(sequence(0x00081140, [referenced, referenced]) + NAME)
    assert agreed(_write(tmp_path, part10(data))).patient_name == "Doe^Jane"


def test_fragments_of_undefined_length_are_skipped(tmp_path: Path) -> None:
    private = fragments(0x00091010, [b"\1" * 40, b"\xfe\xff\xdd\xe0" * 4, b""])
    data = minimal(element(0x00090010, "LO", padded("ACME")) + private + NAME)
    assert agreed(_write(tmp_path, part10(data))).patient_name == "Doe^Jane"


@pytest.mark.parametrize("size", [24, 2_500_000], ids=["short", "over-several-reads"])
@pytest.mark.parametrize("syntax", [IMPLICIT_LE, EXPLICIT_LE])
def test_an_undefined_length_value_without_items_ends_at_the_sequence_delimiter(
    tmp_path: Path, syntax: str, size: int
) -> None:
    implicit = syntax == IMPLICIT_LE
    value = b"no items, bytes".ljust(size, b"x") + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    private = element(0x00091010, None if implicit else "OB", value, length=UNDEFINED)
    creator = element(0x00090010, None if implicit else "LO", padded("ACME"))
    data = minimal(creator + private + (NAME_IMPLICIT if implicit else NAME), implicit=implicit)
    assert agreed(_write(tmp_path, part10(data, syntax))).patient_name == "Doe^Jane"


def test_private_sequences_in_implicit_vr_are_told_by_their_items(tmp_path: Path) -> None:
    private = sequence(0x00091010, [item(element(0x00091011, None, b"AB"))], vr=None)
    data = minimal(element(0x00090010, None, padded("ACME")) + private, implicit=True)
    data += NAME_IMPLICIT
    assert agreed(_write(tmp_path, part10(data, IMPLICIT_LE))).patient_name == "Doe^Jane"


def test_sequences_in_explicit_vr_big_endian(tmp_path: Path) -> None:
    code = element(0x00080100, "SH", padded("CODE"), big=True)
    codes = sequence(
        0x00081032, [item(code, big=True), item(code, big=True, undefined=False)], big=True
    )
    name = element(0x00100010, "PN", padded("Doe^Jane"), big=True)
    rows = element(0x00280010, "US", struct.pack(">H", 300), big=True)
    data = minimal(codes + name + rows, big=True)
    header = agreed(_write(tmp_path, part10(data, EXPLICIT_BE)))
    assert (header.patient_name, header.rows) == ("Doe^Jane", 300)


def test_an_element_without_vr_in_explicit_vr_is_read_as_implicit(tmp_path: Path) -> None:
    data = minimal(element(0x00100010, None, padded("Doe^Jane")) + element(0x00100020, "LO", b"ID"))
    header = agreed(_write(tmp_path, part10(data)))
    assert (header.patient_name, header.patient_id) == ("Doe^Jane", "ID")


@pytest.mark.parametrize(
    ("syntax", "implicit", "warning"),
    [
        (EXPLICIT_LE, True, "Expected explicit VR, but found implicit VR"),
        (IMPLICIT_LE, False, "Expected implicit VR, but found explicit VR"),
    ],
)
def test_a_dataset_in_the_other_vr_encoding_than_its_transfer_syntax(
    tmp_path: Path, syntax: str, implicit: bool, warning: str
) -> None:
    data = minimal(NAME_IMPLICIT if implicit else NAME, implicit=implicit)
    assert agreed(_write(tmp_path, part10(data, syntax)), warns=warning).patient_name == "Doe^Jane"


def test_a_header_beyond_the_first_reads(tmp_path: Path) -> None:
    big = element(0x00090010, "LO", padded("ACME")) + element(0x00091010, "OB", b"\7" * 300_000)
    description = element(0x00081030, "LO", padded("X" * 40_000))  # pydicom warns: too long
    data = minimal(description + big + NAME)
    header = agreed(_write(tmp_path, part10(data)), warns="exceeds the maximum length of 64")
    assert header.study_description == "X" * 40_000


def test_a_deflated_dataset_inflated_beyond_the_first_megabyte(tmp_path: Path) -> None:
    big = element(0x00090010, "LO", padded("ACME")) + element(0x00091010, "OB", b"\0" * 3_000_000)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(minimal(big + NAME)) + compressor.flush()
    path = _write(tmp_path, part10(deflated, DEFLATED))
    assert path.stat().st_size < 100_000
    assert agreed(path).patient_name == "Doe^Jane"


def test_bytes_after_the_last_element_fewer_than_a_header_are_ignored(tmp_path: Path) -> None:
    assert agreed(_write(tmp_path, part10(minimal(NAME) + b"\0\1\2"))).patient_name == "Doe^Jane"


# --- files left to pydicom ------------------------------------------------------------


def test_without_transfer_syntax_pydicom_guesses_it(tmp_path: Path) -> None:
    assert agreed(_write(tmp_path, part10(minimal(NAME), None))).patient_name == "Doe^Jane"


def test_command_elements_before_the_dataset(tmp_path: Path) -> None:
    command = element(0x00000000, None, struct.pack("<L", 10)) + element(0x00000100, None, b"\1\0")
    data = command + minimal(NAME)
    assert agreed(_write(tmp_path, part10(data))).patient_name == "Doe^Jane"


def test_file_meta_information_in_implicit_vr(tmp_path: Path) -> None:
    head = element(0x00020010, None, uid(EXPLICIT_LE))
    path = _write(tmp_path, part10(minimal(NAME), head=head))
    warning = "Expected explicit VR, but found implicit VR"
    header = agreed(path, warns=warning, reader_warns=warning)
    assert header.transfer_syntax_uid == EXPLICIT_LE


def test_an_indexed_attribute_of_undefined_length(tmp_path: Path) -> None:
    name = sequence(0x00100010, [item(element(0x00100010, None, b"AB"))], vr="UN")
    assert agreed(_write(tmp_path, part10(minimal(name)))).patient_name is None


def test_deflated_with_an_indexed_attribute_of_undefined_length_is_refused(
    tmp_path: Path,
) -> None:
    """pydicom reads it (inflating the whole file at once); read_header does not leave
    a deflated file to pydicom, and refuses it."""
    name = sequence(0x00100010, [item(element(0x00100010, None, b"AB"))], vr="UN")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(minimal(name)) + compressor.flush()
    path = _write(tmp_path, part10(deflated, DEFLATED))
    assert header_from_dataset(pydicom.dcmread(path)).patient_name is None
    with pytest.raises(InvalidDicom, match="deflated dataset with a structure"):
        read_header(path)


# --- values ---------------------------------------------------------------------------

INVALID_IS = "Invalid value for VR IS"
NOT_INTEGER = "Invalid value for VR IS|is not valid for elements with a VR of IS"
INSTANCE_NUMBERS = [  # (encoded IS value, header value, what pydicom warns)
    (b" 12 ", 12, None),
    (b"+7", 7, None),
    (b"-0", 0, None),
    (b"1.0", 1, INVALID_IS),
    (b"1.5", None, NOT_INTEGER),
    (b"1e3", 1000, INVALID_IS),
    (b"5\\6", 5, None),
    (b"\\5", None, None),
    (b"5\\", 5, None),
    (b"  ", None, None),
    (b"12\0\0", 12, None),
    (b"abc", None, INVALID_IS),
    (b"5\\x", None, INVALID_IS),
    (b"99999999999999999999", 10**20, "exceeds the maximum length|is not valid for"),
]


@pytest.mark.parametrize(("value", "expected", "warning"), INSTANCE_NUMBERS)
def test_integer_strings(
    tmp_path: Path, value: bytes, expected: int | None, warning: str | None
) -> None:
    """Plain integers are read here, anything else as pydicom parses it (and warns)."""
    path = _write(tmp_path, part10(minimal(element(0x00200013, "IS", padded(value)))))
    assert agreed(path, warns=warning, reader_warns=warning).instance_number == expected


CHARSET = 0x00080005


class Value(NamedTuple):
    tag: int
    vr: str  # as encoded
    encoded: bytes
    field: str
    expected: object  # in the header
    warning: str | None = None  # what pydicom warns about, reading and converting it


VALUES = [
    Value(0x00081030, "LO", b"A \\B ", "study_description", "A\\B"),
    Value(0x00081030, "LO", b"  X ", "study_description", "  X"),
    Value(0x00081030, "UT", b"A\\B  ", "study_description", "A\\B"),
    Value(0x00081030, "ST", b"one\r\ntwo\0", "study_description", "one\r\ntwo"),
    Value(0x00080060, "CS", b"CT \\PT ", "modality", "CT \\PT"),
    Value(0x00080060, "UN", b"CT", "modality", "CT"),
    Value(0x00080050, "SH", b"A1\0\0", "accession_number", "A1"),
    Value(0x00100010, "PN", b"Doe^John==", "patient_name", "Doe^John"),
    Value(0x00100010, "PN", b"=Yamada\0", "patient_name", "=Yamada"),
    Value(0x00100010, "PN", b"A^B\\C^D=E", "patient_name", "A^B\\C^D=E"),
    Value(0x00100010, "PN", b"  ", "patient_name", None),
    Value(0x00100010, "PN", b"", "patient_name", None),
    Value(0x00100010, "LO", b"Doe^John", "patient_name", "Doe^John"),
    Value(0x00100020, "US", b"\5\0", "patient_id", None),
    Value(0x00100020, "OB", b"ID", "patient_id", None),
    Value(0x0020000D, "UI", b"1.2.3\0", "study_instance_uid", "1.2.3"),
    Value(0x00200013, "US", b"\5\0", "instance_number", 5),
    Value(0x00200013, "SL", b"\xff\xff\xff\xff", "instance_number", -1),
    Value(0x00280010, "US", b"\0\2\1\0", "rows", 512),
    Value(0x00280010, "US", b"", "rows", None),
    Value(0x00280010, "IS", b"512 ", "rows", 512),
    Value(0x00280010, "OB", b"\0\2", "rows", None),
    Value(0x00280010, "FL", struct.pack("<f", 256.0), "rows", 256),
]


@pytest.mark.parametrize("case", VALUES, ids=[f"{v.field}-{v.vr}-{v.encoded!r}" for v in VALUES])
def test_values_as_pydicom_decodes_them(tmp_path: Path, case: Value) -> None:
    encoded = element(case.tag, case.vr, case.encoded)
    data = minimal(encoded) if case.tag > 0x00080018 else encoded + minimal()
    path = _write(tmp_path, part10(data))
    header = agreed(path, warns=case.warning, reader_warns=case.warning)
    assert header.as_dict()[case.field] == case.expected


@pytest.mark.parametrize(
    ("charset", "encoded", "expected", "warning"),
    [
        (b"ISO_IR 999", "Müller".encode("latin-1"), "Müller", "Unknown encoding 'ISO_IR 999'"),
        (b"ISO IR 100", "Müller".encode("latin-1"), "Müller", "Incorrect value for Specific"),
        (b"ISO_IR 192", b"M\xfcller", "M\ufffdller", "Failed to decode byte string"),
        (b"ISO_IR 100\\ISO_IR 192", b"M\xfcller", "Müller", "Value 'ISO_IR 192' cannot be used"),
        (b"", "Müller".encode("latin-1"), "Müller", None),
    ],
)
def test_character_sets_pydicom_corrects_or_replaces(
    tmp_path: Path, charset: bytes, encoded: bytes, expected: str, warning: str | None
) -> None:
    data = element(CHARSET, "CS", padded(charset)) + minimal(
        element(0x00081030, "LO", padded(encoded))
    )
    header = agreed(_write(tmp_path, part10(data)), warns=warning, reader_warns=warning)
    assert header.study_description == expected


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            minimal(element(0x00280010, "US", b"\0\2\1")),
            "cannot decode (0028,0010) Rows: BytesLengthException: Expected total bytes",
        ),
        (
            minimal(element(0x00100020, "ZZ", b"ID")),
            "cannot decode (0010,0020) PatientID: NotImplementedError: Unknown Value",
        ),
        (element(0x00080016, "UI", uid("1.2")) + NAME, "no SOP Instance UID (0008,0018)"),
        (minimal(sop="") + NAME, "no SOP Instance UID (0008,0018)"),
    ],
)
def test_what_pydicom_cannot_convert_is_invalid(tmp_path: Path, data: bytes, reason: str) -> None:
    assert refused(_write(tmp_path, part10(data))).startswith(reason)
