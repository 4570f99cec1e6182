"""DICOMweb and the archive routes of a real ``pacsync serve``, with a ``pacsync worker``
running the archive scans, checked with the ``dicomweb-client`` package as a viewer
would use it.

One site for the module: a folder of DICOM files (generated CT and MR studies and
pydicom's uncompressed, RLE and JPEG 2000 samples) and a legacy Firebird store of
JPEG 2000 files, both added and scanned through the API (``POST …/scan`` answers 202
with a job the worker runs).  Then:

- QIDO-RS: studies, series and instances by wild-card name, date range, modality,
  with limit and offset; each result says its archive;
- WADO-RS: studies, series and instances come back as the very files indexed; a legacy
  image as DICOM with its lossless JPEG 2000 codestream (1.2.840.10008.1.2.4.90) and
  the pixels the store was made from; metadata, rendered PNGs and thumbnails;
- the plain download route, and no key → 401.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from dicomweb_client import DICOMwebClient
from PIL import Image
from pydicom import dcmread
from requests import HTTPError

from legacy_pacs import FIREBIRD_HOST, FIREBIRD_PORT, USER, LegacyStore
from processes import KEY, Process, free_port, wait_until_up

from .imaging_archives import cli, ct_series, legacy_store, sample

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
# uncompressed, RLE, JPEG 2000, JPEG baseline, and RLE with two frames
SAMPLES = ("CT_small.dcm", "MR_small_RLE.dcm", "examples_jpeg2k.dcm", "SC_rgb_jpeg_dcmtk.dcm",
           "SC_rgb_rle_2frame.dcm")  # fmt: skip
JOHN, JANE, JOSH = "2.25.801", "2.25.802", "2.25.803"


@dataclass
class Site:
    base: str
    api: httpx.Client
    dicomweb: DICOMwebClient
    nas: Path
    files: dict[str, Path]  # the DICOM files of the folder archive, by SOP Instance UID
    legacy: LegacyStore
    scans: dict[str, str]  # archive → the id of the scan job that indexed it
    home: Path  # PACSYNC_HOME of the server


def _value(result: dict[str, Any], tag: str) -> Any:
    values = result.get(tag, {}).get("Value")
    return values[0] if values else None


def uids(results: list[dict[str, Any]], tag: str = "0020000D") -> list[str]:
    return [_value(r, tag) for r in results]


def instance_route(study: str, series: str, instance: str) -> str:
    return f"/dicomweb/studies/{study}/series/{series}/instances/{instance}"


def _until_ended(api: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.get(f"/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout} s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bytecode_cache: Path
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("dicomweb")
    nas = folder / "nas"
    made = {
        JOHN: ct_series(nas / "john", patient_id="W-1", patient_name="DOE^JOHN",
                        study_uid=JOHN, study_date="20240105"),
        JANE: ct_series(nas / "jane", patient_id="W-2", patient_name="DOE^JANE",
                        study_uid=JANE, study_date="20240610", modality="MR", images=2),
        JOSH: ct_series(nas / "josh", patient_id="W-3", patient_name="DOE^JOSH",
                        study_uid=JOSH, study_date="20230301", images=1),
    }  # fmt: skip
    files = {}
    for study_uid, sops in made.items():
        folder_of = {JOHN: "john", JANE: "jane", JOSH: "josh"}[study_uid]
        for number, sop in enumerate(sops, 1):
            files[sop] = nas / folder_of / f"IM{number:04d}.dcm"
    for name in SAMPLES:
        path = sample(name, nas / "samples" / name)
        files[str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
    with contextmanager(legacy_store)(
        request.config, folder / "legacy-images", patients=2, studies_per_patient=1,
        images_per_study=2,
    ) as legacy:  # fmt: skip
        yield from _served(cli(request.config, folder, bytecode_cache), nas, files, legacy)


def _served(pacsync: Any, nas: Path, files: dict[str, Path], legacy: LegacyStore) -> Iterator[Site]:
    """``pacsync serve`` and ``pacsync worker`` on a new store; both archives added and
    scanned through the API."""
    server = Process(pacsync.start("serve", "--port", str(port := free_port())))
    worker = Process(pacsync.start("worker", "--id", "dicomweb-test", "--queues", "archive-scan"))
    base = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=f"{base}/api/v1", timeout=30)
    try:
        token = server.wait_for(KEY.pattern).group(1)
        wait_until_up(base, server)
        api.headers["Authorization"] = f"Bearer {token}"
        worker.wait_for(r"worker dicomweb-test ready")
        for body in (
            {"name": "nas", "kind": "dicom", "path": str(nas), "rescan_minutes": 0},
            {"name": "legacy", "kind": "firebird-j2k", "path": str(legacy.images),
             "dsn": f"{FIREBIRD_HOST}/{FIREBIRD_PORT}:{legacy.database}", "user": USER,
             "password": legacy.password, "rescan_minutes": 0},
        ):  # fmt: skip
            added = api.post("/archives", json=body)
            assert added.status_code == 201, added.text
            assert legacy.password not in added.text
        scans = {}
        for name in ("nas", "legacy"):
            accepted = api.post(f"/archives/{name}/scan")
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["queue"] == "archive-scan"
            scans[name] = accepted.json()["job_id"]
        listed = {j["id"]: j for j in api.get("/jobs", params={"limit": 100}).json()["items"]}
        assert set(scans.values()) <= set(listed)
        assert {listed[job_id]["kind"] for job_id in scans.values()} == {"archive-scan"}
        for job_id in scans.values():
            job = _until_ended(api, job_id)
            assert job["status"] == "succeeded", job
        client = DICOMwebClient(
            url=f"{base}/api/v1/dicomweb", headers={"Authorization": f"Bearer {token}"}
        )
        home = Path(pacsync.env["PACSYNC_HOME"])
        yield Site(base, api, client, nas, files, legacy, scans, home)
    finally:
        api.close()
        worker.stop()
        server.stop()


def test_archive_scans_queued_through_the_api_ran_on_the_worker(site: Site) -> None:
    nas = site.api.get(f"/jobs/{site.scans['nas']}").json()
    assert nas["progress"]["nas"]["indexed"] == len(site.files) == 11
    assert nas["trigger"] == "api"
    legacy = site.api.get(f"/jobs/{site.scans['legacy']}").json()
    assert legacy["progress"]["legacy"]["indexed"] == site.legacy.image_count == 4
    archives = {a["name"]: a for a in site.api.get("/archives").json()}
    assert {name: a["status"] for name, a in archives.items()} == {
        "nas": "online",
        "legacy": "online",
    }
    assert archives["nas"]["counts"]["instances"] == 11


def test_qido_rs_finds_studies_series_and_instances_by_dicom_matching(site: Site) -> None:
    web = site.dicomweb
    doe = web.search_for_studies(search_filters={"PatientName": "doe^j*"})
    legacy_jane = {i.header.study_instance_uid for i in site.legacy.stored.values()
                   if i.header.patient_name == "DOE^JANE"}  # fmt: skip
    assert set(uids(doe)) == {JOHN, JANE, JOSH} | legacy_jane
    where = {_value(r, "0020000D"): _value(r, "00091001") for r in doe}
    assert {where[JOHN], where[JANE], where[JOSH]} == {"nas"}
    assert {where[uid] for uid in legacy_jane} == {"legacy"}

    in_2024 = web.search_for_studies(
        search_filters={"PatientName": "DOE^J*", "StudyDate": "20240101-20241231"}
    )
    assert sorted(uids(in_2024)) == [JOHN, JANE]
    ct_2024 = web.search_for_studies(
        search_filters={
            "PatientName": "Doe^*",
            "StudyDate": "20240101-",
            "ModalitiesInStudy": "CT",
        },
    )
    assert uids(ct_2024) == [JOHN]
    assert _value(ct_2024[0], "00201208") == 3

    pages = [web.search_for_studies(search_filters={"PatientName": "doe^j*"}, limit=2, offset=o)
             for o in (0, 2, 4)]  # fmt: skip
    assert [len(page) for page in pages] == [2, 2, 0]
    assert uids(pages[0]) + uids(pages[1]) == uids(doe)

    (described,) = web.search_for_studies(
        search_filters={"StudyInstanceUID": JOHN}, fields=["StudyDescription", "00100030"]
    )
    assert _value(described, "00081030") == "CT Chest Abdomen"
    assert _value(described, "00100030") == "19700101"
    with pytest.raises(HTTPError) as refused:
        web.search_for_studies(search_filters={"NoSuchKeyword": "DOE"})
    assert refused.value.response.status_code == 400

    (series,) = web.search_for_series(study_instance_uid=JOHN)
    assert _value(series, "0020000E") == f"{JOHN}.1"
    assert _value(series, "00080060") == "CT"
    assert _value(series, "00201209") == 3
    mr = web.search_for_series(search_filters={"Modality": "MR", "PatientName": "doe*"})
    assert set(uids(mr)) == {JANE} | legacy_jane

    instances = web.search_for_instances(study_instance_uid=JOHN, series_instance_uid=f"{JOHN}.1")
    assert sorted(uids(instances, "00080018")) == [f"{JOHN}.1.{n}" for n in (1, 2, 3)]
    assert {_value(i, "00091001") for i in instances} == {"nas"}
    second = web.search_for_instances(
        study_instance_uid=JOHN, search_filters={"InstanceNumber": "2"}
    )
    assert uids(second, "00080018") == [f"{JOHN}.1.2"]
    (legacy_image,) = web.search_for_instances(
        search_filters={"PatientName": "müller*", "InstanceNumber": "1"}
    )
    assert _value(legacy_image, "00091001") == "legacy"


def test_the_search_route_answers_across_archives_with_where_each_lives(site: Site) -> None:
    both = site.api.get("/search/study", params={"PatientName": "doe^jan*"})
    assert both.status_code == 200, both.text
    assert sorted((r["archive"], r["PatientName"]) for r in both.json()) == [
        ("legacy", "DOE^JANE"),
        ("nas", "DOE^JANE"),
    ]
    one = site.api.get("/search/study", params={"PatientName": "doe^jan*", "archive": "legacy"})
    assert [r["archive"] for r in one.json()] == ["legacy"]
    john = site.api.get("/search/instance", params={"PatientID": "W-1", "InstanceNumber": "3"})
    assert [(r["archive"], r["path"]) for r in john.json()] == [("nas", "john/IM0003.dcm")]
    wrong = site.api.get("/search/study", params={"StudyDate": "yesterday"})
    assert wrong.status_code == 400, wrong.text


def test_wado_rs_retrieves_the_indexed_files(site: Site) -> None:
    web = site.dicomweb
    study = web.retrieve_study(JOHN)
    assert sorted(ds.SOPInstanceUID for ds in study) == [f"{JOHN}.1.{n}" for n in (1, 2, 3)]
    for ds in study:
        source = dcmread(site.files[ds.SOPInstanceUID])
        assert ds.PatientName == source.PatientName
        assert np.array_equal(ds.pixel_array, source.pixel_array)
    series = web.retrieve_series(JANE, f"{JANE}.1")
    assert sorted(ds.SOPInstanceUID for ds in series) == [f"{JANE}.1.1", f"{JANE}.1.2"]

    for name in SAMPLES:
        source = dcmread(site.nas / "samples" / name)
        got = web.retrieve_instance(
            source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID
        )
        assert got.SOPInstanceUID == source.SOPInstanceUID
        assert got.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
        assert np.array_equal(got.pixel_array, source.pixel_array), name


def test_legacy_jpeg2000_images_come_back_as_lossless_dicom_with_their_pixels(site: Site) -> None:
    web = site.dicomweb
    for uid, image in site.legacy.stored.items():
        header = image.header
        got = web.retrieve_instance(header.study_instance_uid, header.series_instance_uid, uid)
        assert got.SOPInstanceUID == uid
        assert got.file_meta.TransferSyntaxUID == JPEG2000_LOSSLESS
        assert got.PatientID == header.patient_id
        assert str(got.PatientName) == header.patient_name
        assert np.array_equal(got.pixel_array, image.pixels), image.relative_path
    uid, image = next(iter(site.legacy.stored.items()))
    decompressed = web.retrieve_instance(
        image.header.study_instance_uid, image.header.series_instance_uid, uid,
        media_types=(("application/dicom", EXPLICIT_VR_LITTLE_ENDIAN),),
    )  # fmt: skip
    assert decompressed.file_meta.TransferSyntaxUID == EXPLICIT_VR_LITTLE_ENDIAN
    assert np.array_equal(decompressed.pixel_array, image.pixels)
    study_uid = image.header.study_instance_uid
    whole = web.retrieve_study(study_uid)
    assert {ds.SOPInstanceUID for ds in whole} == {
        uid for uid, i in site.legacy.stored.items() if i.header.study_instance_uid == study_uid
    }


def test_metadata_rendered_frames_and_thumbnails(site: Site) -> None:
    web = site.dicomweb
    source = dcmread(site.nas / "samples" / "examples_jpeg2k.dcm")
    keys = (source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID)
    meta = web.retrieve_instance_metadata(*keys)
    assert meta["00080018"]["Value"] == [source.SOPInstanceUID]
    assert meta["00020010"]["Value"] == [JPEG2000_LOSSLESS]
    assert meta["00100020"]["Value"] == [source.PatientID]

    png = web.retrieve_instance_rendered(*keys, media_types=("image/png",))
    with Image.open(io.BytesIO(png)) as rendered:
        assert (rendered.format, rendered.size) == ("PNG", (source.Columns, source.Rows))

    path = f"{instance_route(*keys)}/thumbnail"
    for size, expected in (("small", (64, 48)), ("medium", (128, 96))):
        thumb = site.api.get(path, params={"size": size}, headers={"Accept": "image/png"})
        assert thumb.status_code == 200, thumb.text
        assert thumb.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(thumb.content)) as small:
            assert small.size == expected
    study = site.api.get(f"/dicomweb/studies/{JOHN}/thumbnail", params={"size": "small"})
    assert study.status_code == 200, study.text
    with Image.open(io.BytesIO(study.content)) as small:
        assert small.size == (64, 64)
    jpeg = site.api.get(path, headers={"Accept": "image/jpeg"})
    assert jpeg.status_code == 200, jpeg.text
    with Image.open(io.BytesIO(jpeg.content)) as shown:
        assert (shown.format, shown.size) == ("JPEG", (128, 96))

    cached = [p for p in (site.home / "rendered").rglob("*") if p.is_file()]
    assert len(cached) >= 4, "renderings are kept on disk"
    again = site.api.get(path, params={"size": "small"}, headers={"Accept": "image/png"})
    assert again.content == site.api.get(path, params={"size": "small"}).content

    uid, image = next(iter(site.legacy.stored.items()))
    header = image.header
    legacy_png = web.retrieve_instance_rendered(
        header.study_instance_uid, header.series_instance_uid, uid, media_types=("image/png",)
    )
    with Image.open(io.BytesIO(legacy_png)) as rendered:
        assert rendered.size == (header.columns, header.rows)


def test_every_kind_of_pixel_data_is_rendered(site: Site) -> None:
    for name in SAMPLES:
        source = dcmread(site.nas / "samples" / name)
        png = site.dicomweb.retrieve_instance_rendered(
            source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID,
            media_types=("image/png",),
        )  # fmt: skip
        with Image.open(io.BytesIO(png)) as rendered:
            assert rendered.size == (source.Columns, source.Rows), name

    source = dcmread(site.nas / "samples" / "SC_rgb_rle_2frame.dcm")
    instance = instance_route(
        source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID
    )
    for frame in (1, 2):
        got = site.api.get(f"{instance}/frames/{frame}/rendered", headers={"Accept": "image/png"})
        assert got.status_code == 200, got.text
        with Image.open(io.BytesIO(got.content)) as rendered:
            assert np.array_equal(np.asarray(rendered.convert("RGB")),
                                  source.pixel_array[frame - 1]), frame  # fmt: skip
    beyond = site.api.get(f"{instance}/frames/3/rendered", headers={"Accept": "image/png"})
    assert beyond.status_code == 404, beyond.text


def test_plain_download_and_a_request_without_a_key(site: Site) -> None:
    sop, path = next((s, p) for s, p in site.files.items() if p.name == "CT_small.dcm")
    got = site.api.get(f"/archives/nas/instances/{sop}/file")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/dicom"
    assert got.content == path.read_bytes()

    uid = next(iter(site.legacy.stored))
    legacy = site.api.get(f"/archives/legacy/instances/{uid}/file")
    assert legacy.status_code == 200, legacy.text
    part10 = dcmread(io.BytesIO(legacy.content))
    assert part10.SOPInstanceUID == uid
    assert part10.file_meta.TransferSyntaxUID == JPEG2000_LOSSLESS

    missing = site.api.get("/archives/nas/instances/1.2.3.4.5/file")
    assert missing.status_code == 404, missing.text
    elsewhere = site.api.get(f"/archives/legacy/instances/{sop}/file")
    assert elsewhere.status_code == 404, elsewhere.text

    anonymous = httpx.Client(base_url=f"{site.base}/api/v1", timeout=10)
    with anonymous:
        for route in (
            "/dicomweb/studies",
            f"/dicomweb/studies/{JOHN}",
            f"/archives/nas/instances/{sop}/file",
            "/archives",
        ):
            assert anonymous.get(route).status_code == 401, route
        assert anonymous.post("/archives/nas/scan").status_code == 401


def test_an_offline_root_is_503_for_retrieval_and_rendering_alike(site: Site) -> None:
    """The share of the folder archive is unmounted; nothing is lost, every route says the
    archive is offline.  (Runs last: it takes the share away and puts it back.)"""
    first, second = (f"{JANE}.1.1", f"{JANE}.1.2")  # rendered by no other test: not cached
    away = site.nas.with_name("unmounted")
    site.nas.rename(away)
    try:
        retrieved = site.api.get(f"/dicomweb/studies/{JANE}")
        thumbnail = site.api.get(f"{instance_route(JANE, f'{JANE}.1', first)}/thumbnail")
        rendered = site.api.get(f"{instance_route(JANE, f'{JANE}.1', second)}/rendered")
    finally:
        away.rename(site.nas)
    assert (retrieved.status_code, retrieved.json()["code"]) == (503, "PACS-402"), retrieved.text
    for answer in (thumbnail, rendered):
        assert (answer.status_code, answer.json()["code"]) == (503, "PACS-402"), answer.text
