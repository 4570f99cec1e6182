"""Rendering real DICOM files (pydicom's test files) as PNG and JPEG: each transfer
syntax and photometric interpretation, the grayscale pipeline, sizes and errors."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread, dcmwrite
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import MPEG2MPML

from pacsync.connectors.dicom.render import THUMBNAIL_SIZES, render
from pacsync.connectors.files.blobs import FileBlobStore
from pacsync.errors import (
    InvalidDicom,
    InvalidRequest,
    NotFound,
    PacsyncError,
    UnsupportedFeature,
)
from pacsync.imaging.rendering import RenderedCache


def sample(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(path)


def image(data: bytes | Path, **options: Any) -> Image.Image:
    rendered = Image.open(io.BytesIO(render(data, **options)))
    rendered.load()
    return rendered


def pixels(data: bytes | Path, **options: Any) -> np.ndarray:
    return np.asarray(image(data, **options)).astype(np.int32)


def rewritten(name: str, change: Any) -> bytes:
    """The test file ``name`` as Part 10 bytes after ``change(dataset)``."""
    dataset = dcmread(sample(name))
    change(dataset)
    out = io.BytesIO()
    dcmwrite(out, dataset, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "size", "mode"),
    [
        ("CT_small.dcm", (128, 128), "L"),  # Explicit VR Little Endian, CT
        ("MR_small.dcm", (64, 64), "L"),  # MR
        ("MR_small_implicit.dcm", (64, 64), "L"),  # Implicit VR Little Endian
        ("MR_small_bigendian.dcm", (64, 64), "L"),  # Explicit VR Big Endian
        ("image_dfl.dcm", (512, 512), "L"),  # Deflated Explicit VR Little Endian
        ("JPEG2000.dcm", (256, 1024), "L"),  # JPEG 2000
        ("693_J2KR.dcm", (512, 512), "L"),  # JPEG 2000 lossless
        ("MR_small_RLE.dcm", (64, 64), "L"),  # RLE lossless
        ("SC_rgb_rle.dcm", (100, 100), "RGB"),
        ("SC_rgb_jpeg_dcmtk.dcm", (100, 100), "RGB"),  # JPEG baseline, YBR_FULL
        ("color3d_jpeg_baseline.dcm", (640, 480), "RGB"),  # JPEG baseline, YBR_FULL_422
        ("JPGExtended.dcm", (256, 1024), "L"),  # JPEG extended, 12 bits
        ("JPEG-LL.dcm", (256, 1024), "L"),  # JPEG lossless, SV1
        ("MR_small_jpeg_ls_lossless.dcm", (64, 64), "L"),  # JPEG-LS lossless
        ("SC_rgb_jls_lossy_line.dcm", (100, 100), "RGB"),  # JPEG-LS near-lossless
        ("US1_J2KR.dcm", (640, 480), "RGB"),  # JPEG 2000, YBR_RCT
        ("RG1_UNCR.dcm", (1841, 1955), "L"),  # MONOCHROME1
        ("OBXXXX1A.dcm", (800, 600), "RGB"),  # PALETTE COLOR
        ("gdcm-US-ALOKA-16.dcm", (640, 480), "RGB"),  # segmented 16-bit palette
        ("liver.dcm", (512, 512), "L"),  # 1 bit allocated, multi-frame
        ("SC_rgb_16bit.dcm", (100, 100), "RGB"),
        ("rtdose.dcm", (10, 10), "L"),  # 32-bit, dose grid scaling
    ],
)
def test_every_supported_encoding_renders_an_8_bit_png_that_is_not_blank(
    name: str, size: tuple[int, int], mode: str
) -> None:
    rendered = image(sample(name))

    assert rendered.format == "PNG"
    assert rendered.size == size
    assert rendered.mode == mode
    assert np.asarray(rendered).var() > 0


def test_bytes_and_paths_render_alike() -> None:
    path = sample("CT_small.dcm")

    assert render(path.read_bytes()) == render(path)


@pytest.mark.parametrize(
    ("encoded", "native"),
    [
        ("693_J2KR.dcm", "693_UNCR.dcm"),
        ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
        ("MR_small_RLE.dcm", "MR_small.dcm"),
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
        ("MR_small_bigendian.dcm", "MR_small.dcm"),
        ("SC_rgb_rle.dcm", "SC_rgb.dcm"),
        ("SC_rgb_16bit.dcm", "SC_rgb.dcm"),
        ("US1_J2KR.dcm", "US1_UNCR.dcm"),
    ],
)
def test_lossless_encodings_render_exactly_as_the_native_file(encoded: str, native: str) -> None:
    assert np.array_equal(pixels(sample(encoded)), pixels(sample(native)))


@pytest.mark.parametrize(
    "lossy", ["SC_rgb_jpeg_dcmtk.dcm", "SC_ybr_full_uncompressed.dcm", "SC_rgb_jls_lossy_line.dcm"]
)
def test_ybr_and_lossy_colour_comes_out_as_the_same_rgb(lossy: str) -> None:
    difference = np.abs(pixels(sample(lossy)) - pixels(sample("SC_rgb.dcm")))

    assert difference.mean() < 3


def test_the_window_follows_the_linear_function_of_the_standard() -> None:
    path = sample("CT_small.dcm")
    header = dcmread(path)
    hounsfield = header.pixel_array * float(header.RescaleSlope) + float(header.RescaleIntercept)
    center, width = 40.0, 400.0
    # PS3.3 C.11.2.1.2.1, output range 0..255
    expected = ((hounsfield - (center - 0.5)) / (width - 1) + 0.5) * 255
    expected = np.clip(expected, 0, 255)

    rendered = pixels(path, window=(center, width))

    assert np.abs(rendered - expected).max() <= 1


def test_a_window_changes_the_output() -> None:
    path = sample("CT_small.dcm")
    default = pixels(path)

    soft_tissue = pixels(path, window=(40, 400))
    bone = pixels(path, window=(300, 2000))

    assert not np.array_equal(soft_tissue, bone)
    assert not np.array_equal(default, soft_tissue)


def test_the_file_window_is_used_and_its_first_value_when_multi_valued() -> None:
    path = sample("MR_small.dcm")
    header = dcmread(path, stop_before_pixels=True)
    first = (float(header.WindowCenter), float(header.WindowWidth))

    def two_windows(dataset: Dataset) -> None:
        dataset.WindowCenter = [first[0], 100]
        dataset.WindowWidth = [first[1], 50]

    assert np.array_equal(pixels(path), pixels(path, window=first))
    assert np.array_equal(pixels(rewritten("MR_small.dcm", two_windows)), pixels(path))


def test_without_a_window_the_frame_spans_black_to_white() -> None:
    rendered = pixels(sample("CT_small.dcm"))

    assert (rendered.min(), rendered.max()) == (0, 255)


def test_a_voi_lut_sequence_is_applied() -> None:
    def reverse_voi_lut(dataset: Dataset) -> None:
        item = dataset.VOILUTSequence[0]
        item.LUTData = list(item.LUTData)[::-1]

    original = pixels(sample("vlut_04.dcm"))
    reversed_lut = pixels(rewritten("vlut_04.dcm", reverse_voi_lut))

    assert np.array_equal(original + reversed_lut, np.full_like(original, 255))


def test_a_modality_lut_sequence_is_applied() -> None:
    def reverse_modality_lut(dataset: Dataset) -> None:
        item = dataset.ModalityLUTSequence[0]
        item.LUTData = list(item.LUTData)[::-1]

    original = pixels(sample("mlut_18.dcm"))
    reversed_lut = pixels(rewritten("mlut_18.dcm", reverse_modality_lut))

    assert np.array_equal(original + reversed_lut, np.full_like(original, 255))


def test_monochrome1_is_inverted() -> None:
    def as_monochrome1(dataset: Dataset) -> None:
        dataset.PhotometricInterpretation = "MONOCHROME1"

    monochrome2 = pixels(sample("MR_small.dcm"))
    monochrome1 = pixels(rewritten("MR_small.dcm", as_monochrome1))

    assert np.array_equal(monochrome1, 255 - monochrome2)


def test_palette_colour_goes_through_its_lookup_tables() -> None:
    rgb = pixels(sample("OBXXXX1A.dcm"))

    coloured = (rgb[..., 0] != rgb[..., 1]) | (rgb[..., 1] != rgb[..., 2])
    assert coloured.any()


@pytest.mark.parametrize(
    ("name", "frames"),
    [("emri_small.dcm", 10), ("eCT_Supplemental.dcm", 2), ("color3d_jpeg_baseline.dcm", 120)],
)
def test_each_frame_of_a_multi_frame_file_renders_on_its_own(name: str, frames: int) -> None:
    path = sample(name)

    first = pixels(path, frame=1)
    second = pixels(path, frame=2)
    last = pixels(path, frame=frames)

    assert not np.array_equal(first, second)
    assert last.shape == first.shape
    with pytest.raises(NotFound, match=f"frame {frames + 1} of {frames}"):
        render(path, frame=frames + 1)


def test_an_enhanced_object_takes_its_window_from_the_functional_groups() -> None:
    path = sample("eCT_Supplemental.dcm")
    shared = dcmread(path, stop_before_pixels=True).SharedFunctionalGroupsSequence[0]
    voi = shared.FrameVOILUTSequence[0]

    default = pixels(path)

    assert np.array_equal(default, pixels(path, window=(voi.WindowCenter, voi.WindowWidth)))


@pytest.mark.parametrize(("name", "size"), sorted(THUMBNAIL_SIZES.items()))
def test_thumbnails_keep_the_aspect_ratio_with_the_longer_side_at_the_size(
    name: str, size: int
) -> None:
    square = image(sample("693_J2KR.dcm"), size=size)
    tall = image(sample("JPEG2000.dcm"), size=size)

    assert square.size == (size, size)
    assert tall.size == (size // 4, size)
    assert np.asarray(square).var() > 0


def test_an_image_is_never_enlarged() -> None:
    assert image(sample("MR_small.dcm"), size=THUMBNAIL_SIZES["large"]).size == (64, 64)


def test_jpeg_output_decodes_and_its_quality_matters() -> None:
    path = sample("693_J2KR.dcm")

    rendered = image(path, media_type="image/jpeg", size=256)
    low = render(path, media_type="image/jpeg", size=256, quality=20)
    high = render(path, media_type="image/jpeg", size=256, quality=95)

    assert rendered.format == "JPEG"
    assert rendered.size == (256, 256)
    assert np.asarray(rendered).var() > 0
    assert len(low) < len(high)


def test_colour_jpeg_output() -> None:
    rendered = image(sample("US1_J2KR.dcm"), media_type="image/jpeg")

    assert (rendered.format, rendered.mode) == ("JPEG", "RGB")


@pytest.mark.parametrize(
    "options",
    [
        {"media_type": "image/gif"},
        {"media_type": "application/dicom"},
        {"frame": 0},
        {"size": 0},
        {"quality": 0},
        {"quality": 101},
        {"window": (40, 0)},
        {"window": (float("nan"), 400)},
    ],
)
def test_bad_parameters_are_invalid_requests(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        render(sample("CT_small.dcm"), **options)

    assert caught.value.code == "PACS-105"


def test_a_frame_out_of_range_is_not_found() -> None:
    with pytest.raises(NotFound, match="frame 5 of 1") as caught:
        render(sample("CT_small.dcm"), frame=5)

    assert caught.value.code == "PACS-104"


def test_a_file_without_pixel_data_is_not_found() -> None:
    def drop_pixels(dataset: Dataset) -> None:
        del dataset.PixelData

    with pytest.raises(NotFound, match="no pixel data"):
        render(rewritten("CT_small.dcm", drop_pixels))


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no file"):
        render(tmp_path / "gone.dcm")


def test_an_unsupported_transfer_syntax_is_named_in_the_hint() -> None:
    def relabel_as_mpeg2(dataset: Dataset) -> None:
        dataset.file_meta.TransferSyntaxUID = MPEG2MPML

    with pytest.raises(UnsupportedFeature) as caught:
        render(rewritten("SC_rgb_jpeg_dcmtk.dcm", relabel_as_mpeg2))

    assert caught.value.code == "PACS-103"
    assert "MPEG2 Main Profile / Main Level" in caught.value.hint
    assert MPEG2MPML in caught.value.hint


def test_pixel_data_the_decoder_rejects_is_unsupported_and_names_the_syntax() -> None:
    # pylibjpeg's libjpeg refuses this file's JPEG stream (a misplaced marker segment).
    with pytest.raises(UnsupportedFeature) as caught:
        render(sample("JPEG-lossy.dcm"))

    assert "JPEG Extended" in caught.value.hint


def test_truncated_pixel_data_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature, match="cannot decode frame 1"):
        render(sample("MR_truncated.dcm"))


@pytest.mark.parametrize("data", [b"", b"not dicom at all", b"\0" * 128 + b"DICM"])
def test_what_is_not_dicom_is_invalid_dicom(data: bytes) -> None:
    with pytest.raises(InvalidDicom) as caught:
        render(data)

    assert caught.value.code == "PACS-401"


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about cut elements
def test_a_file_cut_anywhere_raises_only_pacsync_errors() -> None:
    whole = sample("MR_small_RLE.dcm").read_bytes()

    for length in range(0, len(whole), 97):
        with contextlib.suppress(PacsyncError):
            render(whole[:length])


def test_the_real_renderer_through_the_file_cache(tmp_path: Path) -> None:
    cache = RenderedCache(FileBlobStore(tmp_path), render)
    path = sample("CT_small.dcm")
    loads: list[Path] = []

    def load() -> Path:
        loads.append(path)
        return path

    first = cache.get("archive/1.2.3/abc", load, size=64)
    second = cache.get("archive/1.2.3/abc", load, size=64)

    assert first == second == render(path, size=64)
    assert len(loads) == 1
