"""DICOMweb as browser viewers use it, in-process over pydicom's sample files: CORS and
preflights, gzip, QIDO-RS keys by tag and fuzzy names, WADO-RS frames as stored (and
decoded, or 406), metadata with BulkDataURIs, rendered images with ``?accept=``,
ranges, viewer links, and STOW-RS into the inbox."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels.utils import pixel_array

from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.bootstrap import archives
from pacsync.domain.access import Role
from pacsync.security.viewer_links import ViewerLinks

from .conftest import Api, TestClient, problem, settings_for

ORIGIN = "http://viewer.example"
SAMPLES = ("CT_small.dcm", "MR_small_jp2klossless.dcm", "SC_rgb_rle_2frame.dcm",
           "examples_ybr_color.dcm")  # fmt: skip
AS_STORED = "multipart/related; type=application/octet-stream; transfer-syntax=*"
EXPLICIT = "1.2.840.10008.1.2.1"


@dataclass
class Site:
    api: Api
    files: dict[str, Path]  # sample name → file

    def route(self, name: str, tail: str = "") -> str:
        ds = dcmread(self.files[name], stop_before_pixels=True)
        return (f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                f"/instances/{ds.SOPInstanceUID}{tail}")  # fmt: skip

    def get(self, path: str, *, as_: Role | None = Role.VIEWER, **headers: str) -> httpx.Response:
        return self.api.get(path, as_=as_, headers={"Origin": ORIGIN, **headers})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from pydicom.data import get_testdata_file

    folder = tmp_path_factory.mktemp("dicomweb-web")
    nas = folder / "nas"
    nas.mkdir()
    files = {}
    for name in SAMPLES:
        found = get_testdata_file(name)
        assert found is not None
        files[name] = Path(shutil.copyfile(found, nas / name))
    settings = settings_for(folder, dicomweb_origins=f"{ORIGIN}, http://other.example",
                            archive_workers=1)  # fmt: skip
    store = bootstrap.store(settings)
    store.archives.add("nas", "dicom", str(nas), rescan_minutes=0)
    archives.scan(settings, store, "nas")
    tokens = {role: store.api_keys.create(f"test {role.value}", role)[1] for role in Role}
    with TestClient(create_app(settings, store=store)) as client:
        yield Site(Api(client, store, settings, tokens), files)
    store.engine.dispose()


def parts(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related answer: (headers, body)."""
    media = response.headers["content-type"]
    assert media.startswith("multipart/related"), media
    boundary = media.split("boundary=")[1].split(";")[0].strip('"').encode()
    body = response.content
    assert body.startswith(b"--" + boundary + b"\r\n")
    found = []
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, _, content = chunk[2:].partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        found.append((headers, content[:-2]))
    assert body.endswith(b"--" + boundary + b"--\r\n")
    return found


def uids(response: httpx.Response, tag: str = "0020000D") -> list[str]:
    return [r[tag]["Value"][0] for r in response.json()]


def test_dicomweb_answers_carry_cors_for_the_configured_origins_only(site: Site) -> None:
    found = site.get("/dicomweb/studies")
    assert found.status_code == 200
    assert found.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in found.headers["vary"]
    for failing, status in (
        (site.get("/dicomweb/studies/1.2.3/metadata"), 404),
        (site.get("/dicomweb/studies", as_=None), 401),
        (site.get("/dicomweb/studies?NoSuchKey=1"), 400),
        (site.get(site.route("CT_small.dcm", "/frames/1"), Accept="image/jp2"), 406),
    ):
        assert failing.status_code == status, failing.text
        assert failing.headers["access-control-allow-origin"] == ORIGIN
    frames = site.get(site.route("CT_small.dcm", "/frames/1"), Accept=AS_STORED)
    assert frames.headers["access-control-allow-origin"] == ORIGIN
    foreign = site.api.get("/dicomweb/studies", as_=Role.VIEWER,
                           headers={"Origin": "http://evil.example"})  # fmt: skip
    assert foreign.status_code == 200
    assert "access-control-allow-origin" not in foreign.headers
    elsewhere = site.get("/jobs")
    assert "access-control-allow-origin" not in elsewhere.headers


def test_preflights_are_answered_204_without_credentials(site: Site) -> None:
    asked = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "authorization, accept"}  # fmt: skip
    answer = site.api.client.options("/api/v1/dicomweb/studies/1.2.3/series", headers=asked)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.headers["access-control-allow-headers"].startswith("accept, authorization")
    assert answer.headers["access-control-allow-methods"] == "GET, POST"  # STOW is on
    refused = site.api.client.options(
        "/api/v1/dicomweb/studies", headers={**asked, "Origin": "http://evil.example"}
    )
    assert refused.status_code == 204
    assert "access-control-allow-origin" not in refused.headers


def test_json_is_gzipped_and_frames_are_not(site: Site) -> None:
    raw = site.api.client.get(
        "/api/v1/dicomweb/studies",
        headers={"Authorization": f"Bearer {site.api.tokens[Role.VIEWER]}",
                 "Accept-Encoding": "gzip"},
    )  # fmt: skip
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.json()  # httpx decoded it
    meta = site.get(
        site.route("examples_ybr_color.dcm", "/metadata"), **{"Accept-Encoding": "gzip"}
    )
    assert meta.headers["content-encoding"] == "gzip"
    frames = site.get(site.route("CT_small.dcm", "/frames/1"), Accept=AS_STORED,
                      **{"Accept-Encoding": "gzip"})  # fmt: skip
    assert "content-encoding" not in frames.headers
    assert gzip  # the module decodes nothing by hand: httpx does


def test_qido_takes_keys_by_tag_repeated_includefields_and_fuzzy_names(site: Site) -> None:
    ct = dcmread(site.files["CT_small.dcm"], stop_before_pixels=True)
    by_tag = site.get(f"/dicomweb/studies?00100020=*{ct.PatientID[1:4]}*"
                      "&includefield=00081030,00080060&includefield=00100030")  # fmt: skip
    assert by_tag.status_code == 200, by_tag.text
    assert ct.StudyInstanceUID in uids(by_tag)
    everything = site.get("/dicomweb/studies?includefield=all&limit=101&offset=0")
    assert len(everything.json()) == len(SAMPLES)
    fuzzy = site.get("/dicomweb/studies?PatientName=compressed&fuzzymatching=true")
    samples = {dcmread(site.files[n]).StudyInstanceUID  # "CompressedSamples^CT1", "…^MR1"
               for n in ("CT_small.dcm", "MR_small_jp2klossless.dcm")}  # fmt: skip
    assert set(uids(fuzzy)) == samples
    exact = site.get("/dicomweb/studies?PatientName=compressed&fuzzymatching=false")
    assert exact.json() == []
    pages = [uids(site.get(f"/dicomweb/studies?limit=2&offset={o}")) for o in (0, 2, 4)]
    assert pages[0] + pages[1] + pages[2] == uids(everything)
    ranged = site.get("/dicomweb/studies?StudyDate=20040101-20041231&ModalitiesInStudy=CT")
    assert uids(ranged) == [ct.StudyInstanceUID]
    series = site.get(f"/dicomweb/studies/{ct.StudyInstanceUID}/series"
                      "?includefield=0008103E,00080021")  # fmt: skip
    assert uids(series, "0020000E") == [ct.SeriesInstanceUID]
    (found,) = series.json()  # the series date and time OHIF asks for
    assert (found["00080021"], found["00080031"]) == (
        {"vr": "DA", "Value": [ct.SeriesDate]},
        {"vr": "TM", "Value": [ct.SeriesTime]},
    )
    dated = site.get(f"/dicomweb/studies/{ct.StudyInstanceUID}/series?SeriesDate={ct.SeriesDate}")
    assert uids(dated, "0020000E") == [ct.SeriesInstanceUID]
    other_day = site.get(f"/dicomweb/studies/{ct.StudyInstanceUID}/series?SeriesDate=19000101")
    assert other_day.json() == []
    instances = site.get(f"/dicomweb/instances?00100020={ct.PatientID}")
    assert uids(instances, "00080018") == [ct.SOPInstanceUID]


def test_frames_go_out_as_stored_with_their_syntax_in_each_part(site: Site) -> None:
    for name in SAMPLES:
        ds = dcmread(site.files[name])
        count = int(ds.get("NumberOfFrames") or 1)
        wanted = [1] if count == 1 else [2, 1]
        answer = site.get(site.route(name, f"/frames/{','.join(map(str, wanted))}"),
                          Accept=AS_STORED)  # fmt: skip
        assert answer.status_code == 200, answer.text
        syntax = str(ds.file_meta.TransferSyntaxUID)
        got = parts(answer)
        assert [h["Content-Type"] for h, _ in got] == [
            f"application/octet-stream; transfer-syntax={syntax}"
        ] * len(wanted)
        if ds.file_meta.TransferSyntaxUID.is_encapsulated:
            stored = list(generate_frames(ds.PixelData, number_of_frames=count))
            assert [body for _, body in got] == [stored[n - 1] for n in wanted], name
        else:
            size = len(ds.PixelData) // count
            assert [body for _, body in got] == [
                ds.PixelData[(n - 1) * size : n * size] for n in wanted
            ]


def test_frames_are_decoded_only_when_the_stored_syntax_is_not_accepted(site: Site) -> None:
    name = "MR_small_jp2klossless.dcm"
    ds = dcmread(site.files[name])
    decoded = site.get(site.route(name, "/frames/1"),
                       Accept=f"multipart/related; type=application/octet-stream; "
                              f"transfer-syntax={EXPLICIT}")  # fmt: skip
    ((headers, body),) = parts(decoded)
    assert headers["Content-Type"] == f"application/octet-stream; transfer-syntax={EXPLICIT}"
    assert body == pixel_array(ds, index=0, raw=True).astype("<i2").tobytes()
    as_jp2 = site.get(site.route(name, "/frames/1"), Accept='multipart/related; type="image/jp2"')
    ((headers, _),) = parts(as_jp2)
    assert headers["Content-Type"].startswith("image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90")
    refused = site.get(site.route("CT_small.dcm", "/frames/1"),
                       Accept='multipart/related; type="image/jp2"')  # fmt: skip
    body = problem(refused, 406, "PACS-103")
    assert "stored as 1.2.840.10008.1.2.1" in body["detail"]
    problem(site.get(site.route("SC_rgb_rle_2frame.dcm", "/frames/3"), Accept=AS_STORED),
            404, "PACS-104")  # fmt: skip


def test_metadata_points_at_bulk_data_that_can_be_fetched(site: Site) -> None:
    name = "CT_small.dcm"
    (meta,) = site.get(site.route(name, "/metadata")).json()
    uri = meta["7FE00010"]["BulkDataURI"]
    assert uri.endswith(site.route(name, "/bulk/7FE00010"))
    assert meta["00020010"]["Value"] == [EXPLICIT]
    assert "Value" not in meta["7FE00010"]
    pixels = site.get(uri.split("/api/v1", 1)[1], Accept=AS_STORED)
    ((_, body),) = parts(pixels)
    assert body == dcmread(site.files[name]).PixelData
    series = site.get(site.route(name).rsplit("/instances/", 1)[0] + "/metadata")
    assert [m["00080018"] for m in series.json()] == [meta["00080018"]]


def test_rendered_takes_the_accept_parameter_over_the_header(site: Site) -> None:
    name = "SC_rgb_rle_2frame.dcm"
    jpeg = site.get(site.route(name, "/rendered?accept=image/jpeg&quality=60"), Accept="image/png")
    assert jpeg.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(jpeg.content)) as shown:
        assert shown.format == "JPEG"
    both = site.get(site.route(name, "/frames/1,2/rendered?accept=image/png"))
    got = parts(both)
    assert [h["Content-Type"] for h, _ in got] == ["image/png", "image/png"]
    source = dcmread(site.files[name])
    for index, (_, body) in enumerate(got):
        with Image.open(io.BytesIO(body)) as frame:
            assert np.array_equal(np.asarray(frame.convert("RGB")), source.pixel_array[index])
    thumbnail = site.get(site.route(name, "/frames/2/thumbnail?viewport=50,50&accept=image/jpeg"))
    with Image.open(io.BytesIO(thumbnail.content)) as small:
        assert (small.format, small.size) == ("JPEG", (50, 50))
    study = site.route(name).split("/series/")[0]
    rendered = site.get(f"{study}/rendered?accept=image/jpeg&viewport=64,64")
    assert [h["Content-Type"] for h, _ in parts(rendered)] == ["image/jpeg"]
    problem(site.get(site.route(name, "/rendered?quality=0&accept=image/jpeg")), 400, "PACS-105")


def test_one_instance_as_plain_dicom_is_served_with_ranges(site: Site) -> None:
    path = site.route("examples_ybr_color.dcm")
    whole = site.get(path, Accept="application/dicom")
    assert whole.status_code == 200
    assert whole.content == site.files["examples_ybr_color.dcm"].read_bytes()
    assert whole.headers["accept-ranges"] == "bytes"
    start = site.get(path, Accept="application/dicom", Range="bytes=128-131")
    assert (start.status_code, start.content) == (206, b"DICM")


def test_a_viewer_link_reads_its_study_alone_until_it_expires(site: Site) -> None:
    ct = dcmread(site.files["CT_small.dcm"], stop_before_pixels=True)
    other = dcmread(site.files["MR_small_jp2klossless.dcm"], stop_before_pixels=True)
    links = ViewerLinks.load(site.api.settings)
    unrecorded = links.issue(ct.StudyInstanceUID, "key:test", 60)  # signed, never issued
    token, link = links.issued(ct.StudyInstanceUID, "key:test", 60)
    expires = dt.datetime.fromtimestamp(link.expires_at, dt.UTC).replace(tzinfo=None)
    site.api.store.viewer_links.record(link.link_id, link.study_uid, link.issued_to, expires)
    bearer = {"Authorization": f"Bearer {token}", "Origin": ORIGIN}
    client = site.api.client
    refused = client.get(
        "/api/v1/dicomweb/studies", headers={"Authorization": f"Bearer {unrecorded}"}
    )
    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("the viewer link is not on record")
    found = client.get("/api/v1/dicomweb/studies", headers=bearer)
    assert uids(found) == [ct.StudyInstanceUID]
    assert client.get(f"/api/v1/dicomweb/studies?token={token}").status_code == 200
    for path in (f"/api/v1/dicomweb/studies/{other.StudyInstanceUID}/metadata",
                 f"/api/v1/dicomweb/studies/{other.StudyInstanceUID}/series"):  # fmt: skip
        assert client.get(path, headers=bearer).status_code == 404
    assert client.get("/api/v1/archives", headers=bearer).status_code == 401
    expired = links.issue(ct.StudyInstanceUID, "key:test", -1)
    refused = client.get("/api/v1/dicomweb/studies", headers={"Authorization": f"Bearer {expired}"})
    assert (refused.status_code, refused.json()["detail"]) == (401, "the viewer link has expired")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert client.get(f"/api/v1/dicomweb/studies?token={forged}").status_code == 401
    reads = site.api.store.audit.recent(action="dicomweb.search")
    assert any(r["detail"].get("viewer_link") for r in reads)
    refused_reads = site.api.store.audit.recent(action="dicomweb.read")
    assert any(r["target"] == other.StudyInstanceUID and r["outcome"] == "PACS-104"
               and r["detail"].get("viewer_link") for r in refused_reads)  # fmt: skip


def _part10(name: str, **changes: Any) -> bytes:
    from pydicom.data import get_testdata_file

    ds: Dataset = dcmread(get_testdata_file(name))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_stow_stores_into_the_inbox_indexed_before_the_answer(site: Site) -> None:
    boundary = "pacsync-test-boundary"
    good = _part10("CT_small.dcm", SOPInstanceUID="2.25.7001", StudyInstanceUID="2.25.7000",
                   PatientID="STOW-1")  # fmt: skip
    body = (
        b"".join(
            b"--%s\r\nContent-Type: application/dicom\r\n\r\n%s\r\n" % (boundary.encode(), part)
            for part in (good, b"not DICOM at all")
        )
        + f"--{boundary}--\r\n".encode()
    )
    media = f'multipart/related; type="application/dicom"; boundary={boundary}'
    answer = site.api.post("/dicomweb/studies", as_=Role.OPERATOR, content=body,
                           headers={"Content-Type": media})  # fmt: skip
    assert answer.status_code == 202, answer.text
    stored = answer.json()
    (ok,) = stored["00081199"]["Value"]
    assert ok["00081155"]["Value"] == ["2.25.7001"]
    assert ok["00081190"]["Value"][0].endswith("/instances/2.25.7001")
    (failed,) = stored["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [0xC000]
    found = site.get("/dicomweb/studies?PatientID=STOW-1")
    assert uids(found) == ["2.25.7000"]
    assert found.json()[0]["00091001"]["Value"] == ["inbox"]
    (entry, *_) = site.api.store.audit.recent(action="dicomweb.store")
    assert entry["detail"]["stored"] == 1

    viewer = site.api.post("/dicomweb/studies", as_=Role.VIEWER, content=body,
                           headers={"Content-Type": media})  # fmt: skip
    problem(viewer, 403, "PACS-002")
    other_study = site.api.post("/dicomweb/studies/2.25.9999", as_=Role.OPERATOR, content=body,
                                headers={"Content-Type": media})  # fmt: skip
    assert other_study.status_code == 409
    reasons = [i["00081197"]["Value"][0] for i in other_study.json()["00081198"]["Value"]]
    assert reasons == [0xA900, 0xC000]
    wrong = site.api.post("/dicomweb/studies", as_=Role.OPERATOR, content=b"{}",
                          headers={"Content-Type": "application/json"})  # fmt: skip
    problem(wrong, 415, "PACS-103")


def test_stow_takes_bodies_over_the_api_limit(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = bootstrap.store(settings)
    token = store.api_keys.create("op", Role.OPERATOR)[1]
    big = _part10("CT_small.dcm", SOPInstanceUID="2.25.7101", StudyInstanceUID="2.25.7100")
    padding = b"\x00" * (1 << 20)
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + big + b"\r\n--b--\r\n" + padding
    with TestClient(create_app(settings, store=store)) as client:
        answer = client.post(
            "/api/v1/dicomweb/studies", content=body,
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        other = client.post("/api/v1/jobs", content=padding + b"{}",
                            headers={"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/json"})  # fmt: skip
        assert other.status_code == 413
    store.engine.dispose()


def test_instances_go_out_as_stored_decoded_or_406(site: Site) -> None:
    name = "MR_small_jp2klossless.dcm"
    j2k = "1.2.840.10008.1.2.4.90"
    dicom = 'multipart/related; type="application/dicom"; transfer-syntax='
    same = site.get(
        site.route(name),
        Accept=dicom + j2k,
    )
    ((headers, body),) = parts(same)
    assert headers["Content-Type"] == f"application/dicom; transfer-syntax={j2k}"
    assert body == site.files[name].read_bytes()
    decoded = site.get(
        site.route(name),
        Accept=dicom + EXPLICIT,
    )
    ((headers, body),) = parts(decoded)
    assert headers["Content-Type"] == f"application/dicom; transfer-syntax={EXPLICIT}"
    assert dcmread(io.BytesIO(body)).file_meta.TransferSyntaxUID == EXPLICIT
    refused = site.get(
        site.route("CT_small.dcm"),
        Accept=dicom + j2k,
    )
    assert "does not encode" in problem(refused, 406, "PACS-103")["detail"]
