"""Viewer links revoked before they expire: through the API at once, by another process
(straight into the store) once the remembered answer is older than its TTL."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydicom import dcmread

from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.api.dicomweb_access import REVOKED_TTL_S, LinkStatuses
from pacsync.bootstrap import archives
from pacsync.domain.access import Role
from pacsync.domain.clock import utc_now

from .conftest import Api, TestClient, problem, settings_for

TEMPLATE = "https://ohif.example/viewer?StudyInstanceUIDs={study_uid}&token={token}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    api: Api
    study: str
    clock: Clock

    def link(self, as_: Role = Role.VIEWER) -> tuple[str, str]:
        """A new link of the study: its token and its id."""
        issued = self.api.get(f"/studies/{self.study}/viewer", as_=as_)
        assert issued.status_code == 200, issued.text
        token = parse_qs(urlsplit(issued.json()["url"]).query)["token"][0]
        return token, issued.json()["link_id"]

    def read(self, token: str) -> int:
        """The status of a DICOMweb read of the study with the link."""
        path = f"/api/v1/dicomweb/studies/{self.study}/metadata"
        return self.api.client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    from pydicom.data import get_testdata_file

    nas = tmp_path / "nas"
    nas.mkdir()
    found = get_testdata_file("CT_small.dcm")
    assert found is not None
    shutil.copyfile(found, nas / "ct.dcm")
    settings = settings_for(tmp_path, viewer_url_template=TEMPLATE, archive_workers=1)
    store = bootstrap.store(settings)
    store.archives.add("nas", "dicom", str(nas), rescan_minutes=0)
    archives.scan(settings, store, "nas")
    tokens = {role: store.api_keys.create(f"test {role.value}", role)[1] for role in Role}
    clock = Clock()
    app = create_app(settings, store=store)
    app.state.link_statuses = LinkStatuses(clock=clock)
    study = dcmread(nas / "ct.dcm", stop_before_pixels=True).StudyInstanceUID
    with TestClient(app) as client:
        yield Site(Api(client, store, settings, tokens), study, clock)
    store.engine.dispose()


def test_a_link_revoked_through_the_api_is_refused_at_once(site: Site) -> None:
    token, link_id = site.link()
    assert site.read(token) == 200  # its "not revoked" answer is now remembered
    revoked = site.api.delete(f"/viewer-links/{link_id}", as_=Role.OPERATOR)
    assert revoked.status_code == 200, revoked.text
    body = revoked.json()
    assert (body["link_id"], body["study_uid"], body["active"]) == (link_id, site.study, False)
    assert body["revoked_by"].startswith("key:")
    refused = site.api.client.get(f"/api/v1/dicomweb/studies?token={token}")
    detail = problem(refused, 401, "PACS-002")
    assert detail["detail"] == "the viewer link was revoked"
    assert "GET /api/v1/studies/{uid}/viewer" in detail["hint"]
    assert refused.headers["www-authenticate"] == "Bearer"
    (entry,) = site.api.audit("viewer_link.revoke")
    assert (entry["target"], entry["outcome"], entry["detail"]["study"]) == (
        link_id, "ok", site.study
    )  # fmt: skip
    other_token, _ = site.link()
    assert site.read(other_token) == 200  # another link of the study still reads


def test_a_revocation_by_another_process_counts_after_the_ttl(site: Site) -> None:
    token, link_id = site.link()
    assert site.read(token) == 200
    site.api.store.viewer_links.revoke(link_id, "os:alice")  # as the CLI would
    site.clock.now += REVOKED_TTL_S - 0.5
    assert site.read(token) == 200  # the remembered answer, no store query
    site.clock.now += 1.0
    assert site.read(token) == 401


def test_revoking_a_study_revokes_every_active_link_of_it(site: Site) -> None:
    (first, _), (second, _) = site.link(), site.link(Role.OPERATOR)
    assert site.read(first) == site.read(second) == 200
    revoked = site.api.delete(f"/studies/{site.study}/viewer-links", as_=Role.OPERATOR)
    assert revoked.json() == {"study_uid": site.study, "revoked": 2}
    assert site.read(first) == site.read(second) == 401
    again = site.api.delete(f"/studies/{site.study}/viewer-links", as_=Role.OPERATOR)
    assert (again.status_code, again.json()["code"]) == (404, "PACS-104")  # none left
    entries = site.api.audit("viewer_link.revoke")
    assert [(e["target"], e["outcome"]) for e in entries] == [
        (site.study, "PACS-104"), (site.study, "ok")
    ]  # fmt: skip
    assert entries[1]["detail"]["revoked"] == 2
    fresh, _ = site.link()
    assert site.read(fresh) == 200  # a link issued afterwards reads again


def test_links_are_listed_with_filters(site: Site) -> None:
    _, kept = site.link()
    _, gone = site.link()
    site.api.store.viewer_links.record(
        "elsewhere01", "1.2.840.99.7", "key:x", utc_now() + dt.timedelta(hours=1)
    )
    site.api.delete(f"/viewer-links/{gone}", as_=Role.OPERATOR)

    def listed(query: str = "") -> list[str]:
        found = site.api.get(f"/viewer-links{query}", as_=Role.OPERATOR)
        assert found.status_code == 200, found.text
        return [item["link_id"] for item in found.json()["items"]]

    assert set(listed()) == {kept, "elsewhere01"}
    assert listed(f"?study={site.study}") == [kept]
    assert listed(f"?study={site.study}&active=false") == [gone, kept]
    items = site.api.get("/viewer-links?active=false", as_=Role.OPERATOR).json()["items"]
    by_id = {item["link_id"]: item for item in items}
    assert by_id[gone]["revoked_at"] is not None
    assert by_id[kept]["revoked_at"] is None
    assert by_id[kept]["issued_to"].startswith("key:")
    latest = site.api.audit("viewer_link.list")[0]
    assert latest["detail"] == {"study": None, "active": False, "returned": 3}


def test_unknown_and_already_revoked_links_are_404_and_409(site: Site) -> None:
    problem(site.api.delete("/viewer-links/0123456789abcdef", as_=Role.OPERATOR), 404, "PACS-104")
    _, link_id = site.link()
    assert site.api.delete(f"/viewer-links/{link_id}", as_=Role.OPERATOR).status_code == 200
    body = problem(site.api.delete(f"/viewer-links/{link_id}", as_=Role.ADMIN), 409, "PACS-107")
    assert "already revoked" in body["detail"]
    outcomes = [e["outcome"] for e in site.api.audit("viewer_link.revoke")]
    assert outcomes == ["PACS-107", "ok", "PACS-104"]


def test_a_viewer_may_not_list_or_revoke_links(site: Site) -> None:
    token, link_id = site.link()
    for method, path in (
        ("GET", "/viewer-links"),
        ("DELETE", f"/viewer-links/{link_id}"),
        ("DELETE", f"/studies/{site.study}/viewer-links"),
    ):
        problem(site.api.request(method, path, as_=Role.VIEWER), 403, "PACS-002")
    assert site.read(token) == 200
    assert site.api.store.viewer_links.status(link_id) == "active"
