"""read_header against pydicom on every file pydicom ships (its own test files, those of
pydicom-data, and its character set files), all offline.

Each file is in exactly one category, decided by what pydicom makes of it:

* a directory (pydicom lists the folders of its DICOMDIR tests): OSError from both;
* not DICOM for pydicom (no ``DICM`` prefix: text, JSON, ICC, gzip, files without
  file meta information): InvalidDicom "not DICOM";
* read by pydicom but without a SOP Instance UID (DICOMDIRs, test datasets of bare
  sequences): InvalidDicom, for the same reason;
* read with a SOP Instance UID: ``read_header`` equals ``header_from_dataset`` of
  pydicom's dataset, field by field.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from functools import cache
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_files
from pydicom.errors import InvalidDicomError

from pacsync.connectors.dicom.header import header_from_dataset, read_header
from pacsync.domain.imaging import InstanceHeader
from pacsync.errors import InvalidDicom

FILES = sorted({Path(p) for p in [*get_testdata_files(), *get_charset_files()]})

# measured with pydicom 3.0 and pydicom-data 1.0: the number of files compared
COMPARED_AT_LEAST = 231

# what pydicom warns about, reading these files (the reference) ...
REFERENCE_WARNINGS = {
    "bad_sequence.dcm": "Invalid value for VR UI|exceeds the maximum length of 16",
    "badVR.dcm": "Invalid value for VR IS: '1A'",
    "SC_rgb_jpeg.dcm": "Expected explicit VR, but found implicit VR",
}
# ... and what read_header warns about: values it leaves to pydicom's converters
READER_WARNINGS = {
    "badVR.dcm": "Invalid value for VR IS: '1A'",
}


def _expecting(warning: str | None) -> contextlib.AbstractContextManager[object]:
    if warning is None:
        return contextlib.nullcontext()
    return pytest.warns(UserWarning, match=warning)


def _name(path: Path) -> str:
    return "/".join(path.parts[-3:])


@cache
def _outcome(path: Path) -> tuple[str, object, object]:
    """(category, pydicom's result, read_header's result) of one file."""
    if path.is_dir():
        with pytest.raises(IsADirectoryError) as reading:
            read_header(path)
        return "directory", None, reading.value
    reference: InstanceHeader | Exception
    with _expecting(REFERENCE_WARNINGS.get(path.name)):
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError as exc:
            reference = exc
        else:
            try:
                reference = header_from_dataset(dataset)
            except InvalidDicom as exc:
                reference = exc
    got: InstanceHeader | InvalidDicom
    with _expecting(READER_WARNINGS.get(path.name)):
        try:
            got = read_header(path)
        except InvalidDicom as exc:
            got = exc
    if isinstance(reference, InvalidDicomError):
        return "not DICOM", reference, got
    if isinstance(reference, InvalidDicom):
        return "no SOP Instance UID", reference, got
    return "compared", reference, got


@pytest.mark.parametrize("path", FILES, ids=_name)
def test_read_header_agrees_with_pydicom(path: Path) -> None:
    category, reference, got = _outcome(path)
    if category == "directory":
        assert isinstance(got, IsADirectoryError)
    elif category == "not DICOM":
        assert isinstance(got, InvalidDicom)
        assert got.message == "not DICOM: no DICM prefix at byte 128"
    elif category == "no SOP Instance UID":
        assert isinstance(got, InvalidDicom)
        assert isinstance(reference, InvalidDicom)
        assert got.message == reference.message == "no SOP Instance UID (0008,0018)"
    else:
        assert isinstance(got, InstanceHeader), got
        assert got.as_dict() == reference.as_dict()  # type: ignore[union-attr]


def test_every_file_is_in_a_category_and_most_are_compared() -> None:
    categories = Counter(_outcome(path)[0] for path in FILES)
    assert sum(categories.values()) == len(FILES)
    assert categories["compared"] >= COMPARED_AT_LEAST, categories
    assert categories["not DICOM"] >= 10, categories
    assert categories["no SOP Instance UID"] >= 10, categories


def test_the_compared_files_cover_every_transfer_syntax_encoding() -> None:
    syntaxes = Counter()
    for path in FILES:
        category, reference, _ = _outcome(path)
        if category == "compared":
            assert isinstance(reference, InstanceHeader)
            syntaxes[reference.transfer_syntax_uid] += 1
    assert syntaxes["1.2.840.10008.1.2"] >= 5  # implicit VR little endian
    assert syntaxes["1.2.840.10008.1.2.1"] >= 50  # explicit VR little endian
    assert syntaxes["1.2.840.10008.1.2.2"] >= 10  # explicit VR big endian
    assert syntaxes["1.2.840.10008.1.2.1.99"] >= 1  # deflated
    assert (
        sum(n for uid, n in syntaxes.items() if uid and uid.startswith("1.2.840.10008.1.2.4")) >= 30
    )
