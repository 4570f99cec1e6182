"""Frames as WADO-RS sends them: located in the file once (the frame index) and read
with a seek each, equal to pydicom's own frames on every sample file pydicom ships."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from pacsync.connectors.dicom.frames import (
    ANY,
    EXPLICIT_LITTLE,
    Choice,
    NotAcceptable,
    frame_index,
    frames,
    read_frames,
)
from pacsync.errors import NotFound

AS_STORED = [Choice("application/octet-stream", frozenset({ANY}))]
FOLDER = Path(str(get_testdata_file("CT_small.dcm"))).parent


def _images() -> list[Path]:
    found = []
    for path in sorted(FOLDER.glob("*.dcm")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                dataset = dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        if "Rows" in dataset:
            found.append(path)
    return found


def test_the_frame_index_reads_what_pydicom_reads_on_every_sample() -> None:
    compared = 0
    for path in _images():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                index = frame_index(path)
                if index is None:
                    continue
                numbers = list(range(1, index.count + 1))
                expected = frames(path, numbers, AS_STORED)
        except Exception:
            continue
        got = read_frames(path, index, numbers, AS_STORED)
        assert got is not None
        assert (got.transfer_syntax, got.frames) == (expected.transfer_syntax, expected.frames), (
            path
        )
        compared += 1
    assert compared >= 40


def test_frames_out_of_range_and_syntaxes_not_accepted() -> None:
    path = Path(str(get_testdata_file("SC_rgb_rle_2frame.dcm")))
    index = frame_index(path)
    assert index is not None
    assert index.count == 2
    with pytest.raises(NotFound):
        read_frames(path, index, [3], AS_STORED)
    only_jp2 = [Choice("image/jp2", frozenset({"1.2.840.10008.1.2.4.90"}))]
    assert read_frames(path, index, [1], only_jp2) is None
    with pytest.raises(NotAcceptable):
        frames(path, [1], only_jp2)
    decoded = frames(path, [2], [Choice("application/octet-stream", frozenset({EXPLICIT_LITTLE}))])
    assert decoded.transfer_syntax == EXPLICIT_LITTLE
    assert decoded.frames[0] == dcmread(path).pixel_array[1].tobytes()
