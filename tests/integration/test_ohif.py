"""The real OHIF viewer (3.13.2, its prebuilt dist) in headless Chromium against pacsync's
DICOMweb, cross-origin: OHIF on one loopback port, pacsync's API on another, with
CORS for OHIF's origin only.

- the study list is filled by QIDO-RS (with OHIF's comma-separated includefield: the
  descriptions show) and filters by patient name;
- opening studies stored uncompressed (a generated CT), as JPEG 2000 (pydicom's
  ``MR_small_jp2klossless``), as JPEG baseline, and multi-frame (a 10-frame JPEG 2000
  enhanced MR, a 2-frame RLE RGB image) draws real pixels in the viewport's canvas:
  read back with ``getImageData``, many grey levels, not a blank or one-colour canvas;
- a viewer link (``GET /api/v1/studies/{uid}/viewer``) opens an OHIF that holds no key
  on its study alone, with its signed token.

Every request OHIF sent to pacsync and the time from navigation to the first image
with real pixels are printed (``pytest -s`` shows them); screenshots go to
``test-output/screenshots/ohif-*.png``.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request
from pydicom import dcmread
from pydicom.data import get_testdata_file

from browser import chromium, new_page, screenshot_folder
from imaging_data import realistic_ct
from ohif import Pacsync, ohif_viewer, pacsync_dicomweb
from orthanc import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CT = "2.25.91010"
SAMPLES = {  # what each pydicom sample stands for in the viewer
    "jpeg2000": "MR_small_jp2klossless.dcm",
    "multiframe-jpeg2000": "emri_small_jpeg_2k_lossless.dcm",
    "multiframe-rle": "SC_rgb_rle_2frame.dcm",
    "jpeg": "examples_ybr_color.dcm",  # 30 frames of JPEG baseline, YBR_FULL_422
}
FIRST_IMAGE_WITHIN_S = 45
# OHIF's other ways to get thumbnails: /thumbnail fetched with Accept: image/jpeg, and
# /rendered?accept=image/jpeg through its DICOMweb client's bulk data retrieval
THUMBNAILS: dict[str, dict[str, Any]] = {
    "thumbnail": {"thumbnailRendering": "thumbnail", "thumbnailRequestStrategy": "fetch"},
    "rendered": {"thumbnailRendering": "rendered", "thumbnailRequestStrategy": "bulkDataRetrieve"},
}
# the viewport canvas: how many distinct grey levels and how much of it is not black
CANVAS_PIXELS = """() => {
  const canvas = document.querySelector('canvas.cornerstone-canvas');
  if (!canvas || !canvas.width || !canvas.height) return null;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const levels = new Set();
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) {
    const grey = (data[i] + data[i + 1] + data[i + 2]) / 3;
    levels.add(Math.round(grey));
    if (grey > 8) lit += 1;
  }
  return {levels: levels.size, lit: lit / (data.length / 4), width: canvas.width,
          height: canvas.height};
}"""


@dataclass
class Site:
    api: Pacsync
    ohif: str  # OHIF with the viewer key in its config
    bare_ohif: str  # OHIF without any key (viewer links bring theirs)
    studies: dict[str, str]  # kind → Study Instance UID
    thumbnails: dict[str, str]  # OHIF with the key, by its thumbnailRendering


@dataclass
class Visit:
    """What one page load asked pacsync for."""

    requests: list[Request] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    began: float = field(default_factory=time.monotonic)
    answered: list[tuple[float, str]] = field(default_factory=list)  # (s after began, url)

    def watch(self, page: Page, api_base: str) -> None:
        page.on("request", lambda r: self.requests.append(r) if api_base in r.url else None)
        page.on("response", lambda r: self._response(r.url, r.status, api_base))

    def _response(self, url: str, status: int, api_base: str) -> None:
        if url.startswith(api_base):
            self.statuses[url] = status
            self.answered.append((time.monotonic() - self.began, url))

    def first_answer(self, part: str) -> float | None:
        """Seconds from the navigation to the first answer whose URL holds ``part``."""
        return next((at for at, url in self.answered if part in url), None)

    def lines(self, api_base: str) -> list[str]:
        return [f"{r.method} {r.url.removeprefix(api_base)}" for r in self.requests]

    def shapes(self, api_base: str) -> Counter[str]:
        """Requests by their shape (UIDs and numbers replaced)."""
        found: Counter[str] = Counter()
        for request in self.requests:
            parts = urlsplit(request.url.removeprefix(api_base))
            path = "/".join("{uid}" if p.replace(".", "").isdigit() and "." in p else
                            ("{n}" if p.replace(",", "").isdigit() else p)
                            for p in parts.path.split("/"))  # fmt: skip
            keys = ",".join(sorted(k for k, _ in parse_qsl(parts.query)))
            found[f"{request.method} {path}" + (f"?{keys}" if keys else "")] += 1
        return found


def _pacsync_site(folder: Path) -> dict[str, str]:
    """The archive folder: a generated CT and pydicom's samples; the study of each kind."""
    ct = folder / "ct"
    ct.mkdir(parents=True)
    for number in (1, 2, 3):
        realistic_ct(ct / f"IM{number}.dcm", patient_id="OHIF-1", patient_name="VIEWER^CT",
                     study_uid=CT, series_uid=f"{CT}.1", sop_uid=f"{CT}.1.{number}",
                     instance_number=number, rows=256, columns=256)  # fmt: skip
    studies = {"ct": CT}
    for kind, name in SAMPLES.items():
        found = get_testdata_file(name)
        assert found is not None, name
        target = folder / "samples" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, target)
        studies[kind] = str(dcmread(target, stop_before_pixels=True).StudyInstanceUID)
    assert len(set(studies.values())) == len(studies), "each kind is a study of its own"
    return studies


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("ohif")
    studies = _pacsync_site(folder / "archive")
    port, keyed_port = free_port(), free_port()
    thumbnail_ports = {kind: free_port() for kind in THUMBNAILS}
    dicomweb = f"http://127.0.0.1:{port}/api/v1/dicomweb"
    keyed_origin = f"http://127.0.0.1:{keyed_port}"
    bare_port = free_port()
    bare = f"http://127.0.0.1:{bare_port}"
    template = f"{bare}/viewer?StudyInstanceUIDs={{study_uid}}&token={{token}}"
    with (
        ohif_viewer(dicomweb, token=None, port=bare_port),
        pacsync_dicomweb(folder / "home", folder / "archive", port=port,
                         dicomweb_origins=",".join([bare, keyed_origin, *(
                             f"http://127.0.0.1:{p}" for p in thumbnail_ports.values())]),
                         viewer_url_template=template, viewer_link_minutes=5) as api,
        # the viewer key is only known once the store exists: that OHIF starts last
        ohif_viewer(dicomweb, token=api.token, port=keyed_port) as keyed,
        ohif_viewer(dicomweb, token=api.token, port=thumbnail_ports["thumbnail"],
                    data_source=THUMBNAILS["thumbnail"]) as by_thumbnail,
        ohif_viewer(dicomweb, token=api.token, port=thumbnail_ports["rendered"],
                    data_source=THUMBNAILS["rendered"]) as by_rendered,
    ):  # fmt: skip
        thumbnails = {"thumbnail": by_thumbnail, "rendered": by_rendered}
        yield Site(api, keyed, bare, studies, thumbnails)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as started:
        yield started


def first_image(page: Page, within_s: float = FIRST_IMAGE_WITHIN_S) -> dict[str, Any]:
    """Wait until the viewport's canvas holds an image with real pixels; its statistics."""
    deadline = time.monotonic() + within_s
    seen: Any = None
    while time.monotonic() < deadline:
        seen = page.evaluate(CANVAS_PIXELS)
        if seen and seen["levels"] >= 16 and seen["lit"] > 0.02:
            return dict(seen)
        page.wait_for_timeout(100)
    raise AssertionError(f"no image with real pixels within {within_s} s: the canvas was {seen}")


def open_study(
    browser: Browser, ohif: str, api: Pacsync, study: str, *, name: str
) -> tuple[Visit, float, dict[str, Any]]:
    page = new_page(browser)
    visit = Visit()
    visit.watch(page, api.base)
    visit.began = began = time.monotonic()
    page.goto(f"{ohif}/viewer?StudyInstanceUIDs={study}")
    pixels = first_image(page)
    took = time.monotonic() - began
    page.screenshot(path=str(screenshot_folder() / f"ohif-{name}.png"))
    page.context.close()
    return visit, took, pixels


def test_the_study_list_shows_every_study_with_its_description(
    site: Site, browser: Browser
) -> None:
    page = new_page(browser)
    visit = Visit()
    visit.watch(page, site.api.base)
    page.goto(f"{site.ohif}/")
    try:
        page.get_by_text("CT Chest Abdomen").wait_for(timeout=30_000)
    finally:
        page.screenshot(path=str(screenshot_folder() / "ohif-study-list.png"))
    page.screenshot(path=str(screenshot_folder() / "ohif-study-list.png"))
    body = page.inner_text("body")
    assert "VIEWER, CT" in body
    (listing, *_) = [r for r in visit.requests if urlsplit(r.url).path.endswith("/studies")]
    query = dict(parse_qsl(urlsplit(listing.url).query))
    assert query["includefield"] == "00081030,00080060,00080090,00100030"
    assert query["fuzzymatching"] == "true"
    assert listing.headers["authorization"] == f"Bearer {site.api.token}"
    assert visit.statuses[listing.url] == 200

    filtered = Visit()
    filtered.watch(page, site.api.base)
    page.goto(f"{site.ohif}/?patientName=viewer")
    page.get_by_text("CT Chest Abdomen").wait_for(timeout=30_000)
    searched = [r.url for r in filtered.requests if "PatientName" in r.url]
    assert searched, filtered.lines(site.api.base)
    assert dict(parse_qsl(urlsplit(searched[-1]).query))["PatientName"] == "*viewer*"
    page.wait_for_timeout(500)
    assert "CompressedSamples" not in page.inner_text("body")
    print("\nOHIF study list requests:", *visit.lines(site.api.base), sep="\n  ")
    page.context.close()


@pytest.mark.parametrize("kind", ["ct", "jpeg2000", "jpeg", "multiframe-jpeg2000",
                                  "multiframe-rle"])  # fmt: skip
def test_opening_a_study_draws_its_pixels(site: Site, browser: Browser, kind: str) -> None:
    visit, took, pixels = open_study(browser, site.ohif, site.api, site.studies[kind], name=kind)
    frames = [r for r in visit.requests if "/frames/" in r.url]
    assert frames, visit.lines(site.api.base)
    for request in frames:
        assert request.headers["accept"] == (
            "multipart/related; type=application/octet-stream; transfer-syntax=*"
        )
        assert visit.statuses.get(request.url) in (200, None), request.url  # None: cancelled
    assert all(status == 200 for status in visit.statuses.values()), visit.statuses
    print(f"\nOHIF opened the {kind} study: first image after {took:.2f} s "
          f"({pixels['levels']} grey levels on a {pixels['width']}x{pixels['height']} canvas); "
          f"{len(visit.requests)} requests; answered after: first QIDO "
          f"{visit.first_answer('/studies?') or 0:.2f} s, metadata "
          f"{visit.first_answer('/metadata') or 0:.2f} s, first frame "
          f"{visit.first_answer('/frames/') or 0:.2f} s:")  # fmt: skip
    for shape, count in sorted(visit.shapes(site.api.base).items()):
        print(f"  {count:3d} × {shape}")
    if kind == "ct":
        print("  in order:", *visit.lines(site.api.base), sep="\n    ")
    assert took < FIRST_IMAGE_WITHIN_S


def test_a_viewer_link_opens_its_study_alone_in_an_ohif_without_a_key(
    site: Site, browser: Browser
) -> None:
    api = httpx.Client(base_url=f"{site.api.base}/api/v1", timeout=30)
    with api:
        answer = api.get(f"/studies/{CT}/viewer",
                         headers={"Authorization": f"Bearer {site.api.token}"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        url = answer.json()["url"]
        assert url.startswith(f"{site.bare_ohif}/viewer?StudyInstanceUIDs={CT}&token=pvl_")
        token = url.split("&token=")[1]
        page = new_page(browser)
        visit = Visit()
        visit.watch(page, site.api.base)
        began = time.monotonic()
        page.goto(url)
        first_image(page)
        took = time.monotonic() - began
        page.screenshot(path=str(screenshot_folder() / "ohif-viewer-link.png"))
        assert "token=" not in page.url  # OHIF takes it out of the address bar
        page.context.close()
        assert visit.requests
        for request in visit.requests:
            assert request.headers.get("authorization") == f"Bearer {token}", request.url
        assert all(status == 200 for status in visit.statuses.values()), visit.statuses
        print(f"\nthe viewer link opened {CT} after {took:.2f} s:",
              *visit.lines(site.api.base), sep="\n  ")  # fmt: skip

        bearer = {"Authorization": f"Bearer {token}"}
        everything = api.get("/dicomweb/studies", headers=bearer)
        assert [s["0020000D"]["Value"][0] for s in everything.json()] == [CT]
        other = site.studies["jpeg2000"]
        assert api.get(f"/dicomweb/studies/{other}/series", headers=bearer).status_code == 404
        assert api.get("/archives", headers=bearer).status_code == 401
    reads = site.api.store.audit.recent(action="dicomweb.read")
    assert any(r["target"] == CT and r["detail"].get("viewer_link") for r in reads)
    (issued, *_) = site.api.store.audit.recent(action="viewer_link.issue")
    assert issued["target"] == CT


@pytest.mark.parametrize("rendering", sorted(THUMBNAILS))
def test_thumbnails_come_from_thumbnail_and_rendered_in_other_configurations(
    site: Site, browser: Browser, rendering: str
) -> None:
    page = new_page(browser)
    visit = Visit()
    visit.watch(page, site.api.base)
    page.goto(f"{site.thumbnails[rendering]}/viewer?StudyInstanceUIDs={CT}")
    first_image(page)
    deadline = time.monotonic() + 20
    asked: list[Request] = []
    while not asked and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        asked = [r for r in visit.requests if urlsplit(r.url).path.endswith(f"/{rendering}")]
    assert asked, visit.lines(site.api.base)
    for request in asked:
        response = request.response()
        assert response is not None
        assert response.status == 200, request.url
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["access-control-allow-origin"] == site.thumbnails[rendering]
    thumbnail = page.locator("img[src^='blob:']").first
    thumbnail.wait_for(timeout=20_000)
    page.screenshot(path=str(screenshot_folder() / f"ohif-thumbnails-{rendering}.png"))
    print(f"\nOHIF thumbnails by {rendering}:", *visit.lines(site.api.base), sep="\n  ")
    page.context.close()
