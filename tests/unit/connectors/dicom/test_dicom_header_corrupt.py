"""read_header on files that are not DICOM, truncated or corrupt: always InvalidDicom
with a one-line reason (or a header, for garbage that happens to parse), never another
exception, never a hang, never memory for lengths the file does not hold; OSError
from reading the file as it came."""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
import warnings
import zlib
from pathlib import Path
from typing import Any

import pytest
from dicom_encoding import (
    DEFLATED,
    IMPLICIT_LE,
    UNDEFINED,
    element,
    item,
    meta,
    minimal,
    padded,
    part10,
    sequence,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

import pacsync.connectors.dicom.header as header_module
from imaging_data import realistic_ct, transcode
from pacsync.connectors.dicom.header import read_header
from pacsync.domain.imaging import InstanceHeader
from pacsync.errors import InvalidDicom

NAME = element(0x00100010, "PN", padded("Doe^Jane"))
REASONS = (  # the beginnings of every reason read_header gives
    "not DICOM",
    "truncated",
    "no SOP Instance UID",
    "cannot decode",
    "unreadable",
    "corrupt deflated data",
    "deflated dataset",
    "sequences nested",
)


def _write(tmp_path: Path, data: bytes, name: str = "corrupt.dcm") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _reason(path: Path) -> str:
    with pytest.raises(InvalidDicom) as refused:
        read_header(path)
    message = refused.value.message
    assert "\n" not in message
    return message


def _outcome(path: Path) -> InstanceHeader | str:
    """The header, or the one-line reason of the InvalidDicom."""
    try:
        return read_header(path)
    except InvalidDicom as exc:
        reason = exc.message
    assert "\n" not in reason
    return reason


def _header_or_reason(path: Path) -> InstanceHeader | str:
    """What read_header makes of garbage; pydicom's warnings about it are expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _outcome(path)


def _realistic(tmp_path: Path, name: str = "ct.dcm") -> Path:
    path = tmp_path / name
    realistic_ct(
        path,
        patient_id="ID-1",
        patient_name="Müller^Jürgen",
        study_uid="1.2.3",
        series_uid="1.2.3.4",
        sop_uid="1.2.3.4.5",
        instance_number=3,
        charset="ISO_IR 100",
        rows=16,
        columns=16,
    )
    return path


# --- not DICOM ------------------------------------------------------------------------


def test_an_empty_file(tmp_path: Path) -> None:
    reason = _reason(_write(tmp_path, b""))
    assert reason == "not DICOM: empty file, no DICM prefix at byte 128"


def test_a_file_shorter_than_the_preamble(tmp_path: Path) -> None:
    assert (
        _reason(_write(tmp_path, b"\0" * 50)) == "not DICOM: 50 bytes, no DICM prefix at byte 128"
    )


def test_a_text_file(tmp_path: Path) -> None:
    text = "patient,study\n" + "Doe^John,CT chest\n" * 40
    assert _reason(_write(tmp_path, text.encode())) == "not DICOM: no DICM prefix at byte 128"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=3000))
def test_random_bytes(tmp_path: Path, data: bytes) -> None:
    assert _reason(_write(tmp_path, data)).startswith("not DICOM")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=2000),
    syntax=st.sampled_from([None, IMPLICIT_LE, "1.2.840.10008.1.2.1", DEFLATED]),
)
def test_random_bytes_after_file_meta_information(
    tmp_path: Path, data: bytes, syntax: str | None
) -> None:
    result = _header_or_reason(_write(tmp_path, part10(data, syntax)))
    assert isinstance(result, InstanceHeader) or result.startswith(REASONS), result


@pytest.fixture(scope="module")
def realistic_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _realistic(tmp_path_factory.mktemp("ct")).read_bytes()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.lists(st.tuples(st.integers(0, 6000), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_bytes_changed_in_a_realistic_header(
    tmp_path: Path, realistic_bytes: bytes, changes: list[tuple[int, int]]
) -> None:
    data = bytearray(realistic_bytes)
    for position, value in changes:
        data[position] = value
    result = _header_or_reason(_write(tmp_path, bytes(data)))
    assert isinstance(result, InstanceHeader) or result.startswith(REASONS), result


# --- truncated ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("syntax", "step"), [(None, 1), (ImplicitVRLittleEndian, 3), (ExplicitVRBigEndian, 3)]
)
def test_truncated_at_every_offset(tmp_path: Path, syntax: str | None, step: int) -> None:
    """Cut inside an element: InvalidDicom; cut between elements: the attributes before
    the cut; cut after the last indexed attribute: the whole header."""
    path = _realistic(tmp_path)
    if syntax is not None:
        path = transcode(path, tmp_path / "transcoded.dcm", syntax)
    data = path.read_bytes()
    whole = read_header(path).as_dict()
    cut = tmp_path / "cut.dcm"
    complete_from = None
    for end in [*range(0, 5000, step), *range(5000, len(data), 997)]:
        cut.write_bytes(data[:end])
        result = _outcome(cut)
        if isinstance(result, str):
            assert result.startswith(("not DICOM", "truncated at byte", "no SOP")), result
            assert complete_from is None, f"refused at {end}, after the header at {complete_from}"
            continue
        found = result.as_dict()
        assert all(value in (None, whole[name]) for name, value in found.items()), end
        if found == whole:
            complete_from = complete_from or end
        else:
            assert complete_from is None, f"attributes lost at {end}"
    assert complete_from is not None
    assert complete_from < 5000  # the header never needs the bytes after it


def test_the_reason_names_the_element_and_where_the_file_ends(tmp_path: Path) -> None:
    data = part10(minimal(NAME))
    reason = _reason(_write(tmp_path, data[:-3]))
    size = len(data) - 3
    assert (
        reason
        == f"truncated at byte {size} in (0010,0010): its value needs bytes {size - 5}-{size + 3}"
    )


# --- impossible lengths ---------------------------------------------------------------


def _peak_while(path: Path) -> tuple[int, str]:
    tracemalloc.start()
    try:
        reason = _reason(path)
        return tracemalloc.get_traced_memory()[1], reason
    finally:
        tracemalloc.stop()


LYING = [
    (
        "a private value",
        minimal(element(0x00091010, "OB", b"xx", length=0xFFFFFFF0) + NAME),
        "(0009,1010)",
    ),
    (
        "an indexed value",
        minimal(element(0x00100010, "UT", b"xx", length=0xFFFFFFF0)),
        "(0010,0010)",
    ),
    ("a 2-byte length", minimal(element(0x00100010, "PN", b"xx", length=0xFFFF)), "(0010,0010)"),
    (
        "an item",
        minimal(
            element(
                0x00091010, "SQ", struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFF0), length=UNDEFINED
            )
        ),
        "(0009,1010)",
    ),
    (
        "an element in an item",
        minimal(sequence(0x00081140, [item(element(0x00081150, "UT", b"", length=0xFFFFFFF0))])),
        "(0008,1150)",
    ),
    ("a sequence never closed", minimal(sequence(0x00081140, [item(NAME)])[:-8]), "(0008,1140)"),
    (
        "a value without delimiter",
        minimal(element(0x00091010, "OB", b"\1" * 64, length=UNDEFINED)),
        "(0009,1010): no sequence delimiter before the end",
    ),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("data", "where"), [case[1:] for case in LYING], ids=[c[0] for c in LYING])
def test_lengths_the_file_does_not_hold(tmp_path: Path, data: bytes, where: str) -> None:
    peak, reason = _peak_while(_write(tmp_path, part10(data)))
    assert reason.startswith("truncated at byte")
    assert where in reason
    assert peak < 1 << 20


def test_a_lying_length_in_the_file_meta_information(tmp_path: Path) -> None:
    head = meta("1.2.840.10008.1.2.1") + element(0x00020100, "OB", b"", length=0x7FFFFFFF)
    reason = _reason(_write(tmp_path, part10(minimal(), head=head)))
    assert reason.startswith("truncated at byte")
    assert "(0002,0100)" in reason


@pytest.mark.timeout(10)
def test_sequences_nested_without_end(tmp_path: Path) -> None:
    opening = element(0x00081140, "SQ", b"", length=UNDEFINED) + struct.pack(
        "<HHL", 0xFFFE, 0xE000, UNDEFINED
    )
    reason = _reason(_write(tmp_path, part10(minimal(opening * 5000))))
    assert reason.startswith("sequences nested deeper than 64 levels")


@pytest.mark.timeout(10)
def test_a_deflate_bomb(tmp_path: Path) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = b"\0" * (1 << 20)
    parts = [compressor.compress(minimal(element(0x00091010, "OB", b"", length=40 << 20)))]
    parts += [compressor.compress(zeros) for _ in range(40)]
    path = _write(tmp_path, part10(b"".join([*parts, compressor.flush()]), DEFLATED))
    peak, reason = _peak_while(path)
    assert reason == "deflated dataset: no end of the header in its first 16777216 bytes"
    assert peak < 40 << 20


@pytest.mark.parametrize(
    ("deflated", "reason"),
    [
        (b"\xff" * 100, "corrupt deflated data: Error -3 while decompressing data"),
        (zlib.compress(minimal(NAME))[2:-30], "truncated deflated data"),
    ],
)
def test_corrupt_deflated_data(tmp_path: Path, deflated: bytes, reason: str) -> None:
    assert _reason(_write(tmp_path, part10(deflated, DEFLATED))).startswith(reason)


def test_a_deflated_dataset_truncated_inside_an_element(tmp_path: Path) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    dataset = minimal(NAME)[:-3]
    deflated = compressor.compress(dataset) + compressor.flush()
    reason = _reason(_write(tmp_path, part10(deflated, DEFLATED)))
    size = len(dataset)
    assert reason == (
        f"truncated at byte {size} in (0010,0010): "
        f"its value needs bytes {size - 5}-{size + 3} (inflated dataset)"
    )


def test_garbage_left_to_pydicom(tmp_path: Path) -> None:
    """Without a transfer syntax pydicom reads the file, and its failure is the reason."""
    never_closed = sequence(0x00081140, [item(NAME)])[:-8]
    reason = _reason(_write(tmp_path, part10(minimal(never_closed), None)))
    assert reason.startswith("unreadable: OSError: No tag to read at file position")


# --- reading fails --------------------------------------------------------------------


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_header(tmp_path / "missing.dcm")


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        read_header(tmp_path)


class _FailingFile(io.FileIO):
    """A file whose reads fail after the first one (a disk or network error)."""

    failure = OSError(5, "Input/output error")
    reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        _FailingFile.reads += 1
        if _FailingFile.reads > 1:
            raise _FailingFile.failure
        return super().read(size)


@pytest.mark.parametrize(
    "data",
    [
        part10(minimal(element(0x00091010, "OB", b"\0" * 100_000) + NAME)),  # read by chunks
        part10(minimal(NAME), None),  # left to pydicom: no transfer syntax
    ],
    ids=["read-here", "read-by-pydicom"],
)
def test_a_failing_read_raises_its_oserror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes
) -> None:
    path = _write(tmp_path, data)
    _FailingFile.reads = 0

    def failing_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> io.FileIO:
        assert mode == "rb"
        return _FailingFile(os.fspath(file), "r")

    monkeypatch.setattr(header_module, "open", failing_open, raising=False)
    with pytest.raises(OSError, match="Input/output error") as raised:
        read_header(path)
    assert raised.value is _FailingFile.failure
