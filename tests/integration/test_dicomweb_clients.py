"""A second DICOMweb client against a real pacsync server on loopback: the
``dicomweb-client`` package (what scripts and AI pipelines use), over HTTP, with a
viewer key for reading and an operator key for STOW-RS.

Frames come back as stored (JPEG 2000 codestreams, RLE segments, uncompressed bytes)
or decoded when asked; metadata's BulkDataURIs resolve; rendered images honour
viewport and quality; instances stored with STOW-RS are found at once."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from dicomweb_client import DICOMwebClient
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames
from pydicom.pixels.utils import pixel_array

from ohif import Pacsync, pacsync_dicomweb
from pacsync.domain.access import Role

pytestmark = [pytest.mark.integration]

SAMPLES = ("CT_small.dcm", "MR_small_jp2klossless.dcm", "SC_rgb_rle_2frame.dcm",
           "emri_small_jpeg_2k_lossless.dcm")  # fmt: skip
EXPLICIT = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pacsync, Path]]:
    folder = tmp_path_factory.mktemp("clients")
    archive = folder / "archive"
    archive.mkdir()
    for name in SAMPLES:
        found = get_testdata_file(name)
        assert found is not None
        shutil.copyfile(found, archive / name)
    with pacsync_dicomweb(folder / "home", archive) as api:
        yield api, archive


def client(api: Pacsync, token: str | None = None) -> DICOMwebClient:
    return DICOMwebClient(url=api.dicomweb,
                          headers={"Authorization": f"Bearer {token or api.token}"})  # fmt: skip


def test_frames_come_back_as_stored_or_decoded(served: tuple[Pacsync, Path]) -> None:
    api, archive = served
    web = client(api)
    for name in SAMPLES:
        ds = dcmread(archive / name)
        count = int(ds.get("NumberOfFrames") or 1)
        keys = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        numbers = list(range(1, count + 1))
        frames = web.retrieve_instance_frames(
            *keys, frame_numbers=numbers, media_types=(("application/octet-stream", "*"),)
        )
        if ds.file_meta.TransferSyntaxUID.is_encapsulated:
            assert frames == list(generate_frames(ds.PixelData, number_of_frames=count)), name
        else:
            assert b"".join(frames) == ds.PixelData, name
        (decoded,) = web.retrieve_instance_frames(
            *keys, frame_numbers=[count], media_types=(("application/octet-stream", EXPLICIT),)
        )
        expected = pixel_array(ds, index=count - 1, raw=True)
        assert decoded == expected.astype(expected.dtype.newbyteorder("<")).tobytes(), name


def test_search_metadata_bulk_data_and_rendering(served: tuple[Pacsync, Path]) -> None:
    api, archive = served
    web = client(api)
    ds = dcmread(archive / "emri_small_jpeg_2k_lossless.dcm")
    (study,) = web.search_for_studies(
        search_filters={"StudyInstanceUID": ds.StudyInstanceUID},
        fields=["StudyDescription", "00080061"], fuzzymatching=True,
    )  # fmt: skip
    assert study["00080061"]["Value"] == ["MR"]
    (meta,) = web.retrieve_series_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert meta["00280008"]["Value"] == [10]
    # dicomweb-client sends "Host: 127.0.0.1" without the port, so the server's absolute
    # URI names port 80: its path is what matters
    uri = api.base + "/api/v1/" + meta["7FE00010"]["BulkDataURI"].split("/api/v1/", 1)[1]
    frames = web.retrieve_bulkdata(uri, media_types=(("application/octet-stream", "*"),))
    assert frames == list(generate_frames(ds.PixelData, number_of_frames=10))
    jpeg = web.retrieve_instance_frames_rendered(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[3],
        media_types=("image/jpeg",), params={"viewport": "32,32", "quality": "80"},
    )  # fmt: skip
    with Image.open(io.BytesIO(jpeg)) as shown:
        assert (shown.format, shown.size) == ("JPEG", (32, 32))
        assert len(np.unique(np.asarray(shown))) > 8


def test_instances_stored_with_stow_are_found_at_once(served: tuple[Pacsync, Path]) -> None:
    api, archive = served
    ds = dcmread(archive / "CT_small.dcm")
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "2.25.61", "2.25.61.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "2.25.61.1.1"
    ds.PatientID = "STOW-CLIENT"
    operator = api.store.api_keys.create("stow", Role.OPERATOR)[1]
    answer = client(api, operator).store_instances([ds])
    (stored,) = answer.ReferencedSOPSequence
    assert stored.ReferencedSOPInstanceUID == "2.25.61.1.1"
    assert "FailedSOPSequence" not in answer
    web = client(api)
    (found,) = web.search_for_instances(search_filters={"PatientID": "STOW-CLIENT"})
    assert found["00091001"]["Value"] == ["inbox"]
    again = web.retrieve_instance("2.25.61", "2.25.61.1", "2.25.61.1.1")
    assert np.array_equal(again.pixel_array, ds.pixel_array)
